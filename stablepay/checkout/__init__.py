"""The shopper's payment page: its states, the QR, the browser wallet configuration."""

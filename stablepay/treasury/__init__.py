"""Treasury (issue 18): forwarder deposit addresses swept to the merchant's settlement address."""

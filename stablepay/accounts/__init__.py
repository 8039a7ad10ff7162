"""Staff logins: lockout after failed attempts and second factors (TOTP, passkeys)."""

"""Security controls of the web tier: Content-Security-Policy, per-token API rate limits, login
throttling. docs/security.md says what each defends."""

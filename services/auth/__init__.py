"""Authentication (OAuth2 password grant with JWT, API keys) and scope checks."""

"""The node's core, below every domain: settings, the exception root, tables, the audit
chain, identity and record rules, vocabularies, pseudonyms, app keys and the route table."""

__all__ = [
    "access",
    "appkeys",
    "audit",
    "audit_verify",
    "config",
    "context",
    "db",
    "errors",
    "pseudonym",
    "routes",
    "schemas",
    "times",
    "vocabulary",
]

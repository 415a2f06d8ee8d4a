"""Who may do what: principals, bearer tokens, role grants on paths and the policy that decides.

Used by every front end that acts for someone other than the process's own user: the daemon (a request
carries a principal: the peer of its unix socket, or the owner of a bearer token) and the CLI run through
sudo or doas (the invoking user, ``hivectl.auth.invoker``). docs/security.md describes the model.
"""

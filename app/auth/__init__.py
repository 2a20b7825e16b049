"""Who may do what: the login gate every request passes (:mod:`~app.auth.gate`), the users file
(:mod:`~app.auth.accounts`) and its command line (:mod:`~app.auth.users`), the limits on password guessing
(:mod:`~app.auth.login_limits`), and the host and cross-site checks before them (:mod:`~app.auth.request_checks`)."""

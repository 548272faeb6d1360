"""The authorization states a mailbox's OAuth sign-in can be in, as a diagnosis names them."""

NOT_AUTHORIZED = "not_authorized"
AUTHORIZED = "authorized"
REAUTHORIZE = "reauthorization_required"
UPDATE_PASSWORD = "password_update_required"
ERROR = "error"

"""Exceptions raised by the nousu client."""


class NousuError(Exception):
    """Something between this client and nousud failed: the daemon did not
    answer in time, or answered with something that is not SPEC §4/§6/§7."""


class NousuTimeout(NousuError, TimeoutError):
    """nousud did not answer within the timeout (after every retry)."""

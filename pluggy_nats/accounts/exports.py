"""Stream and service exports and imports of accounts: the model the config
file and account JWTs are parsed into, and that the importers
(:mod:`.streams`, :mod:`.services`) are built from."""


class StreamExport:
    __slots__ = ("subject", "accounts")

    def __init__(self, subject, accounts=None):
        self.subject = subject
        self.accounts = accounts  # None = public


class StreamImport:
    __slots__ = ("account", "subject", "prefix", "to")

    def __init__(self, account, subject, prefix=None, to=None):
        self.account = account
        self.subject = subject
        self.prefix = prefix
        self.to = to


# Service export response types (nats-server ServiceRespType) and the default
# time a streamed/chunked response route lives (DEFAULT_SERVICE_EXPORT_RESPONSE_THRESHOLD).
SINGLETON, STREAMED, CHUNKED = "Singleton", "Streamed", "Chunked"
RESPONSE_TYPES = {"single": SINGLETON, "singleton": SINGLETON, "stream": STREAMED,
                  "chunk": CHUNKED, "chunked": CHUNKED}
DEFAULT_RESPONSE_THRESHOLD = 120.0


class ServiceExport:
    __slots__ = ("subject", "accounts", "response_type", "threshold")

    def __init__(self, subject, accounts=None, response_type=SINGLETON,
                 threshold=DEFAULT_RESPONSE_THRESHOLD):
        self.subject = subject
        self.accounts = accounts  # None = public
        self.response_type = response_type
        self.threshold = threshold  # seconds a response route lives


class ServiceImport:
    __slots__ = ("account", "subject", "to", "export")

    def __init__(self, account, subject, to=None):
        self.account = account  # the exporting account's name
        self.subject = subject  # the subject in the exporting account
        self.to = to or subject  # the subject requests are published to here
        self.export = None  # the ServiceExport it was authorized by (set by build)

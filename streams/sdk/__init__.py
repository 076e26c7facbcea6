"""The site SDK: send events to muster from a site app or a script, through a disk spool.

from streams.sdk import Emitter
"""

from streams.sdk.emitter import Emitter, event_id_for
from streams.sdk.transport import Refused, Unreachable

__all__ = ["Emitter", "Refused", "Unreachable", "event_id_for"]

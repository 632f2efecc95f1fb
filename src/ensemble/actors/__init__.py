"""The actor runtime (the Durable Objects contract in trio) and the domain actors."""

from ensemble.actors._activation import CLOSE_ACTOR_RESET, ReplySlot
from ensemble.actors._behavior import KEEP, Address, Behavior, Close, Command, Decision, Event, Send, Spawn, Tell, TurnMeta
from ensemble.actors._frames import OutboundFrame, WireFormat, encode_json, encode_msgpack
from ensemble.actors._subscriber import CLOSE_NORMAL, CLOSE_SLOW_CONSUMER, Subscriber, SubscriberClosed
from ensemble.actors._system import ActorHandle, ActorSystem, open_actor_system

__all__ = [
    "ActorHandle",
    "ActorSystem",
    "Address",
    "Behavior",
    "CLOSE_ACTOR_RESET",
    "CLOSE_NORMAL",
    "CLOSE_SLOW_CONSUMER",
    "Close",
    "Command",
    "Decision",
    "Event",
    "KEEP",
    "OutboundFrame",
    "ReplySlot",
    "Send",
    "Spawn",
    "Subscriber",
    "SubscriberClosed",
    "Tell",
    "TurnMeta",
    "WireFormat",
    "encode_json",
    "encode_msgpack",
    "open_actor_system",
]

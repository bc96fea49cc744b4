"""The sans-I/O RTMP protocol: client bytes in, events and reply bytes out."""

from __future__ import annotations

import logging
import struct

import pytest
from rtmp_support import (
    AVCC,
    IDR,
    KEY,
    ClientBytes,
    ServerReplies,
    avc_tag,
    codes,
    commands,
    ex_video,
)
from streamforge_media.ingest.rtmp import amf0
from streamforge_media.ingest.rtmp.chunk import (
    ACKNOWLEDGEMENT,
    WINDOW_ACK_SIZE,
    Message,
    ProtocolError,
    control_message,
)
from streamforge_media.ingest.rtmp.protocol import (
    Closed,
    HintsReceived,
    MediaReceived,
    PublishRequested,
    RtmpProtocol,
    Unpublished,
)
from streamforge_media.media import MediaKind, PublisherHints

pytestmark = pytest.mark.unit

STREAM_KEY = "sk_" + "k" * 43


class Peer:
    """A protocol with the client and reply decoders around it."""

    def __init__(self) -> None:
        self.protocol = RtmpProtocol(max_message_size=1 << 20, label="test")
        self.client = ClientBytes()
        self.replies = ServerReplies()

    def send(self, data: bytes) -> list[object]:
        self.protocol.receive_data(data)
        return list(self.protocol.events_received())

    def received(self) -> list[Message]:
        return self.replies.feed(self.protocol.data_to_send())

    def publishing(self, key: str = STREAM_KEY) -> Peer:
        assert self.send(self.client.publish(key)) == [PublishRequested(key)]
        self.protocol.accept_publish()
        assert self.protocol.events_received() == []
        self.received()
        return self


def test_obs_publish_flow() -> None:
    peer = Peer()
    assert peer.send(peer.client.connect()) == []
    replies = peer.replies.feed(peer.protocol.data_to_send())
    assert [m.type_id for m in replies[:3]] == [5, 6, 1]  # window, peer bandwidth, chunk size
    assert codes(replies) == ["NetConnection.Connect.Success"]
    events = peer.send(peer.client.command("releaseStream", 2.0, None, STREAM_KEY)
                       + peer.client.command("FCPublish", 3.0, None, STREAM_KEY)
                       + peer.client.command("createStream", 4.0, None)
                       + peer.client.command("publish", 5.0, None, STREAM_KEY + "?bandwidth=6000", "live",
                                             stream_id=1))
    assert events == [PublishRequested(STREAM_KEY)]
    results = commands(peer.replies.feed(peer.protocol.data_to_send()))
    assert [(c[0], c[1]) for c in results] == [("_result", 2.0), ("_result", 3.0), ("_result", 4.0)]
    assert results[2][3] == 1.0  # the stream id
    assert not peer.protocol.publishing
    peer.protocol.accept_publish()
    replies = peer.replies.feed(peer.protocol.data_to_send())
    assert replies[0].type_id == 4 and replies[0].payload == struct.pack(">HI", 0, 1)  # StreamBegin 1
    assert codes(replies) == ["NetStream.Publish.Start"]
    assert peer.protocol.publishing
    assert peer.send(peer.client.command("FCUnpublish", 6.0, None, STREAM_KEY)
                     + peer.client.command("deleteStream", 7.0, None, 1.0)) == [Unpublished()]
    assert peer.send(peer.client.video(avc_tag(KEY, 0, body=AVCC))) == []  # no longer publishing


def test_what_follows_the_publish_waits_for_the_answer() -> None:
    peer = Peer()
    burst = (peer.client.publish(STREAM_KEY) + peer.client.metadata({"width": 320.0, "videocodecid": 7.0})
             + peer.client.video(avc_tag(KEY, 0, body=AVCC)) + peer.client.video(avc_tag(KEY, 1, 0, IDR), 40))
    assert peer.send(burst) == [PublishRequested(STREAM_KEY)]
    assert peer.send(peer.client.video(avc_tag(KEY, 1, 0, IDR), 80)) == []  # held, not lost
    peer.protocol.accept_publish()
    events = peer.protocol.events_received()
    assert events[0] == HintsReceived(PublisherHints(frozenset({MediaKind.VIDEO}), width=320))
    assert [e.unit.dts_ms for e in events[1:] if isinstance(e, MediaReceived)] == [40, 80]


def test_media_before_a_granted_publish_is_dropped() -> None:
    peer = Peer()
    events = peer.send(peer.client.connect() + peer.client.video(avc_tag(KEY, 0, body=AVCC))
                       + peer.client.video(avc_tag(KEY, 1, 0, IDR)) + peer.client.metadata({"width": 1.0}))
    assert events == []


def test_refused_publish_gets_badname_then_closed_and_nothing_more() -> None:
    peer = Peer()
    peer.send(peer.client.publish(STREAM_KEY) + peer.client.video(avc_tag(KEY, 0, body=AVCC)))
    peer.protocol.refuse_publish()
    replies = peer.replies.feed(peer.protocol.data_to_send())
    assert codes(replies)[-1] == "NetStream.Publish.BadName"
    status = commands(replies)[-1][3]
    assert status["level"] == "error" and STREAM_KEY not in status["description"]
    assert peer.protocol.events_received() == [Closed("publish refused")]
    assert peer.send(peer.client.video(avc_tag(KEY, 1, 0, IDR))) == []
    assert peer.protocol.data_to_send() == b""


@pytest.mark.parametrize("key", ["", "?token=1"])
def test_empty_key_is_refused_without_asking(key: str) -> None:
    peer = Peer()
    assert peer.send(peer.client.publish(key)) == [Closed("publish refused")]
    assert codes(peer.received())[-1] == "NetStream.Publish.BadName"


@pytest.mark.parametrize(("app", "name", "key"), [
    (f"live/{STREAM_KEY}", "", STREAM_KEY),  # OBS: whole URL as Server, empty Stream Key
    (f"live/{STREAM_KEY}?obs=1", "", STREAM_KEY),
    (f"/live/{STREAM_KEY}/", "", STREAM_KEY),
    ("live/ignored", STREAM_KEY, STREAM_KEY),  # a publish name wins over the app's tail
    ("live?x=1", STREAM_KEY + "?y=2", STREAM_KEY),
])
def test_key_in_the_app(app: str, name: str, key: str) -> None:
    peer = Peer()
    events = peer.send(peer.client.connect(app) + peer.client.command("createStream", 2.0, None)
                       + peer.client.command("publish", 3.0, None, name, "live", stream_id=1))
    assert events == [PublishRequested(key)]


@pytest.mark.parametrize("app", ["other", "livex/key", "", "x/live"])
def test_app_must_start_with_live(app: str) -> None:
    peer = Peer()
    assert peer.send(peer.client.connect(app)) == [Closed("wrong app")]
    assert codes(peer.received()) == ["NetConnection.Connect.Rejected"]


@pytest.mark.parametrize(("offered", "answered"), [
    (["av01", "vp09", "hvc1", "avc1", "Opus", "fLaC"], ["avc1", "hvc1", "Opus"]),
    (["*"], ["avc1", "hvc1", "Opus", "mp4a", ".mp3"]),
    (["av01"], []),
    (None, None),
])
def test_enhanced_rtmp_fourcc_negotiation(offered: list[str] | None, answered: list[str] | None) -> None:
    peer = Peer()
    peer.send(peer.client.connect(**({"fourCcList": offered} if offered is not None else {})))
    result = commands(peer.received())[0]
    assert result[0] == "_result"
    assert result[2].get("fourCcList") == answered


def test_unsupported_fourcc_is_rejected_with_a_status_and_closed() -> None:
    peer = Peer().publishing()
    events = peer.send(peer.client.video(ex_video(KEY, 0, b"av01", b"\x81\x00")))
    assert len(events) == 1 and isinstance(events[0], Closed)
    status = commands(peer.received())[-1]
    assert status[0] == "onStatus" and status[3]["code"] == "NetStream.Publish.Rejected"
    assert status[3]["level"] == "error"
    assert "AV1" in status[3]["description"] and "H.264" in status[3]["description"]
    assert STREAM_KEY not in status[3]["description"]


def test_media_while_publishing() -> None:
    peer = Peer().publishing()
    events = peer.send(peer.client.video(avc_tag(KEY, 0, body=AVCC)) + peer.client.video(avc_tag(KEY, 1, 33, IDR), 10)
                       + peer.client.message(9, avc_tag(KEY, 1, 0, IDR), stream_id=2, csid=7))  # other stream
    assert len(events) == 1 and isinstance(events[0], MediaReceived)
    assert (events[0].unit.dts_ms, events[0].unit.pts_ms, events[0].unit.keyframe) == (10, 43, True)


def test_amf3_metadata_and_undecodable_data(caplog: pytest.LogCaptureFixture) -> None:
    peer = Peer().publishing()
    # Type 15: format byte 0, AMF0 strings, then 0x11 and an AMF3 anonymous dynamic object {width: 1920 (int)}.
    amf3_object = b"\x0a\x0b\x01" + b"\x0bwidth" + b"\x04\x8f\x00" + b"\x01"
    data15 = b"\x00" + amf0.encode("@setDataFrame", "onMetaData") + b"\x11" + amf3_object
    caplog.set_level(logging.INFO)
    events = peer.send(peer.client.message(15, data15, stream_id=1, csid=4)
                       + peer.client.message(18, b"\x02\x00\x0aonMetaData\x11\x0c\x03x", stream_id=1, csid=4)
                       + peer.client.message(18, b"\x07\x00\x01", stream_id=1, csid=4)
                       + peer.client.message(15, b"\x05garbage", stream_id=1, csid=4)
                       + peer.client.video(avc_tag(KEY, 0, body=AVCC)) + peer.client.video(avc_tag(KEY, 1, 0, IDR)))
    assert events[0] == HintsReceived(PublisherHints(None, width=1920))
    assert isinstance(events[1], MediaReceived) and len(events) == 2
    skipped = [r.getMessage() for r in caplog.records if "undecodable data" in r.getMessage()]
    assert len(skipped) == 3 and all(line.count("\n") == 0 for line in skipped)


def test_acknowledgement_after_the_peer_window() -> None:
    peer = Peer()
    peer.send(peer.client.writer.encode(control_message(WINDOW_ACK_SIZE, 1000)) + peer.client.connect())
    peer.received()
    room = peer.protocol.ack_room
    assert room is not None and 0 < room < 1000
    sent = 16 + len(peer.client.connect())
    big = peer.client.message(18, amf0.encode("x" * 1000))
    peer.send(big)
    acks = [m for m in peer.received() if m.type_id == ACKNOWLEDGEMENT]
    assert [struct.unpack(">I", m.payload)[0] for m in acks] == [sent + len(big)]
    assert peer.protocol.ack_room == 1000


@pytest.mark.parametrize("data", [
    ClientBytes().command("createStream", 1.0, None),  # before connect
    ClientBytes().command(1.0, "connect"),  # not a command
    ClientBytes().message(20, b"\x07\x00\x01"),  # AMF0 reference
    ClientBytes().message(17, b"\x00\x11\x0c\x01"),  # AMF3 ByteArray in a command
])
def test_protocol_violations_raise(data: bytes) -> None:
    with pytest.raises(ProtocolError):
        Peer().send(data)


def test_publish_twice_raises() -> None:
    peer = Peer().publishing()
    with pytest.raises(ProtocolError, match="already publishing"):
        peer.send(peer.client.command("publish", 9.0, None, STREAM_KEY, "live", stream_id=1))


def test_an_answer_needs_a_pending_publish() -> None:
    peer = Peer()
    with pytest.raises(RuntimeError):
        peer.protocol.accept_publish()
    peer.publishing()
    with pytest.raises(RuntimeError):
        peer.protocol.refuse_publish()


def test_publish_again_after_unpublish_on_the_same_connection() -> None:
    peer = Peer().publishing()
    assert peer.send(peer.client.command("FCUnpublish", 6.0, None, STREAM_KEY)) == [Unpublished()]
    assert peer.send(peer.client.command("publish", 7.0, None, STREAM_KEY, "live", stream_id=1)) == [
        PublishRequested(STREAM_KEY)]

"""Whether a Kafka answers, for the one-shot commands: they fail fast with one line instead of
waiting out their reads while librdkafka reports every refused connection."""

from __future__ import annotations

import logging
import time

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient

from runtime.kafka.client_config import passed_through


class KafkaUnreachable(Exception):
    pass


class TopicMissing(Exception):
    """The broker answers but has no such topic: most often another --namespace."""


def require_kafka(bootstrap: str, timeout: float = 10.0, topic: str | None = None) -> None:
    """Returns once a broker of `bootstrap` answers a metadata request (and has `topic`, when
    given: TopicMissing otherwise); KafkaUnreachable ("cannot reach Kafka at ...") after
    `timeout`, or at once when the broker refuses this client's TLS or credentials. Silent
    meanwhile (log_level 0)."""
    # The --kafka-config settings too: TLS or SASL are how the broker answers at all.
    errors: list[KafkaError] = []
    # librdkafka tells a plaintext client at a TLS listener only in its debug log (the listener
    # hangs up on the first request), so its broker debug lines are kept here, not printed.
    lines = _LibrdkafkaLines()
    admin = AdminClient({"bootstrap.servers": bootstrap, **passed_through(), "log_level": 7,
                         "debug": "broker", "logger": lines.logger, "error_cb": errors.append})
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        said = [*(e.str() for e in errors), *lines.messages]
        if refusal := next((why for e in errors if (why := security_refusal(e.code(), e.str()))), None) or next(
                (why for text in said if (why := security_refusal(None, text))), None) or (
                plaintext_at_tls(lines.messages)):
            raise KafkaUnreachable(f"Kafka at {bootstrap} refused this client: {refusal}")
        try:
            # Every topic, not just `topic`: asking for one by name may create it (auto.create.topics.enable).
            metadata = admin.list_topics(timeout=max(0.1, min(2.0, deadline - time.monotonic())))
        except KafkaException as error:
            last = error.args[0].str()
        else:
            if topic is not None and topic not in metadata.topics:
                raise TopicMissing(topic)
            return
        admin.poll(0)  # delivers the errors seen meanwhile to error_cb
        time.sleep(0.2)
    raise KafkaUnreachable(f"cannot reach Kafka at {bootstrap} ({last}, for {timeout:.0f} s)")


class _LibrdkafkaLines(logging.Handler):
    """A logger that keeps one client's connection failures (its FAIL lines) and prints nothing."""

    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []
        self.logger = logging.getLogger(f"wayfinder.reach.{id(self)}")
        self.logger.propagate = False
        self.logger.addHandler(self)

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if len(self.messages) < 100 and "FAIL" in message:  # connection failures only
            self.messages.append(message)


def security_refusal(code: int | None, text: str) -> str | None:
    """What a librdkafka error or log line says about TLS or SASL, in the operator's terms
    (pure); None when it is about something else, such as a broker that is down."""
    if code == KafkaError._AUTHENTICATION or "SASL authentication error" in text:
        return ("its user or password is refused (sasl.username / sasl.password in --kafka-config; "
                "a rotated password is in the role's new file)")
    if "certificate verify failed" in text:
        return "its ssl.ca.location does not trust the broker's certificate"
    if "incorrect security.protocol" in text or "connecting to a SSL listener" in text:
        return ("it speaks another protocol than the listener (a secured Kafka needs --kafka-config "
                "with security.protocol=SASL_SSL)")
    return None


def plaintext_at_tls(messages: list[str]) -> str | None:
    """A listener that hangs up on the very first request, again and again, while this client
    speaks plaintext: it speaks TLS (pure). A broker that is down refuses the connection
    instead, and one that is busy answers late, not never."""
    hang_ups = sum("in state APIVERSION_QUERY" in m and "closed by peer" in m for m in messages)
    if hang_ups >= 2 and passed_through().get("security.protocol", "plaintext").lower() == "plaintext":
        return ("the listener hangs up on plaintext: it speaks TLS (a secured Kafka needs --kafka-config "
                "with security.protocol=SASL_SSL and the role's credentials)")
    return None

"""Whether a Kafka answers, for the one-shot commands: they fail fast with one line instead of
waiting out their reads while librdkafka reports every refused connection."""

from __future__ import annotations

import time

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from runtime.kafka.client_config import passed_through


class KafkaUnreachable(Exception):
    pass


class TopicMissing(Exception):
    """The broker answers but has no such topic: most often another --namespace."""


def require_kafka(bootstrap: str, timeout: float = 10.0, topic: str | None = None) -> None:
    """Returns once a broker of `bootstrap` answers a metadata request (and has `topic`, when
    given: TopicMissing otherwise); KafkaUnreachable ("cannot reach Kafka at ...") after
    `timeout`. Silent meanwhile (log_level 0)."""
    # The --kafka-config settings too: TLS or SASL are how the broker answers at all.
    admin = AdminClient({"bootstrap.servers": bootstrap, **passed_through(), "log_level": 0})
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            # Every topic, not just `topic`: asking for one by name may create it (auto.create.topics.enable).
            metadata = admin.list_topics(timeout=max(0.1, min(2.0, deadline - time.monotonic())))
        except KafkaException as error:
            last = error.args[0].str()
        else:
            if topic is not None and topic not in metadata.topics:
                raise TopicMissing(topic)
            return
        time.sleep(0.2)
    raise KafkaUnreachable(f"cannot reach Kafka at {bootstrap} ({last}, for {timeout:.0f} s)")

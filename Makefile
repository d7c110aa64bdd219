# The two commands of the README: `make demo` and `make test`.
# Each installs what is missing first: Debian packages, the .venv, and Apache Kafka.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: demo test setup system-packages kafka-install unit

demo: setup
	$(VENV)/bin/wayfinder demo

test: setup
	$(VENV)/bin/python -m pytest -q -p no:cacheprovider --durations=40 tests

unit: setup
	$(VENV)/bin/python -m pytest -q -p no:cacheprovider tests/unit

setup: system-packages $(STAMP) kafka-install

# Debian packages the suite and the demo use. Installed only when one is missing.
DEBIAN_PACKAGES := openjdk-17-jre-headless maven iproute2 nftables libnftables1 conntrack docker-compose bind9-dnsutils dnsmasq-base unbound dnsperf haproxy openssl containernetworking-plugins prometheus
system-packages:
	@missing=$$(for p in $(DEBIAN_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q "install ok installed" || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:" $$missing; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

$(STAMP): requirements.lock pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check -r requirements.lock
	$(VENV)/bin/pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $(STAMP)

kafka-install: $(STAMP)
	$(VENV)/bin/wayfinder kafka install

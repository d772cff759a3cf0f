# mailsync: `make run` and `make test` work on a fresh Debian machine.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# Dovecot (IMAP + LMTP) for the demo and the tests; Java and Maven for the Apache Kafka
# broker (its jars come from Maven Central, see devservers/kafka/pom.xml); swaks, kcat,
# mutt and mbsync to check things as a user would; Chromium to test the status page
# headless. swaks only recommends the Perl modules it needs for STARTTLS and AUTH, so
# they are named here.
APT_PACKAGES := dovecot-imapd dovecot-lmtpd default-jre-headless maven swaks \
	libnet-ssleay-perl libauthen-sasl-perl kcat mutt isync chromium
APT_BINARIES := dovecot doveadm java mvn swaks kcat mutt mbsync chromium
APT_PERL_MODULES := Net::SSLeay Authen::SASL

.PHONY: deps apt venv lock kafka run test test-fast lint typecheck schemas bench clean

deps: apt venv kafka

apt:
	@missing=""; for b in $(APT_BINARIES); do command -v $$b >/dev/null 2>&1 || missing="$$missing $$b"; done; \
	for m in $(APT_PERL_MODULES); do perl -M$$m -e1 2>/dev/null || missing="$$missing $$m"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages (missing:$$missing)"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $(APT_PACKAGES) >/dev/null; \
	fi

venv: $(VENV)/.installed

# Every distribution from requirements.lock, each checked against its hashes, then the
# project itself (no dependencies: the lock has them all, and `pip check` says so). The
# checkout goes on the venv's path too, for devservers/ (`mailsync run`, the tests),
# which the package does not ship.
$(VENV)/.installed: pyproject.toml requirements.lock
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q --require-hashes -r requirements.lock
	$(VENV)/bin/pip install -q --no-deps -e .
	$(VENV)/bin/pip check
	echo "$(CURDIR)" > "$$($(PY) -c 'import sysconfig; print(sysconfig.get_path("purelib"))')/mailsync-checkout.pth"
	touch $@

# Re-pin after changing pyproject.toml's dependencies (pip-compile keeps the pins it
# can; `make lock UPGRADE=--upgrade` moves everything to the newest). Hashes are every
# file PyPI has of each pinned version, so they cover whichever wheel pip picks.
# requirements-runtime.lock (the image's) is the subset without the dev extra, at the
# same versions (a test checks).
PIP_COMPILE := .cache/pip-tools/bin/pip-compile -q --generate-hashes --strip-extras \
	--no-emit-find-links $(UPGRADE)
lock:
	[ -x .cache/pip-tools/bin/pip-compile ] || \
	  { python3 -m venv .cache/pip-tools && .cache/pip-tools/bin/pip install -q pip-tools; }
	$(PIP_COMPILE) --extra dev -o requirements.lock pyproject.toml
	cp requirements.lock requirements-runtime.lock
	$(PIP_COMPILE) -o requirements-runtime.lock pyproject.toml

# Apache Kafka's jars (one pinned version) into .cache/kafka-<version>/libs, by Maven.
kafka: venv
	$(PY) -m devservers.kafka_dist

run: deps
	$(VENV)/bin/mailsync run --demo

test: deps
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/mailsync schemas export --check
	$(VENV)/bin/mailsync openapi export --check
	$(VENV)/bin/pytest -n 3 --dist loadfile

test-fast: venv
	$(VENV)/bin/pytest tests/unit tests/property

lint: venv
	$(VENV)/bin/ruff check .

typecheck: venv
	$(VENV)/bin/mypy

schemas: venv
	$(VENV)/bin/mailsync schemas export

bench: deps
	$(PY) -m bench.run

clean:
	rm -rf $(VENV) .mailsync .cache

# Two commands: `make run` (set up, index corpus/, start the chat) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test eval ingest

$(STAMP): requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --disable-pip-version-check -r requirements.txt
	touch $(STAMP)

install: $(STAMP)

# A bad file in corpus/ is reported by `ingest` but does not keep the app from starting.
run: install
	-$(BIN)/python -m rag ingest
	$(BIN)/streamlit run app.py

test: install
	$(BIN)/python -m pytest

ingest: install
	$(BIN)/python -m rag ingest

eval: install
	$(BIN)/python -m eval

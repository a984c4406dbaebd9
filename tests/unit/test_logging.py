"""Log lines are JSON, carry the request id of the context they were logged in, and are
written by a thread of their own without being lost at exit."""

import json
import logging
import subprocess
import sys

import config.logging as log_config


def test_a_line_keeps_the_request_id_of_where_it_was_logged(capfd):
    log_config.configure_logging("INFO")
    token = log_config.request_id_var.set("req-123")
    try:
        logging.getLogger("memorymesh.test").info("stored", extra={"count": 2})
    finally:
        log_config.request_id_var.reset(token)
    logging.getLogger("memorymesh.test").info("outside")
    log_config.stop_writing()  # waits until the writer thread has written what is queued

    first, second = (json.loads(line) for line in capfd.readouterr().err.splitlines())
    assert first["msg"] == "stored" and first["count"] == 2 and first["request_id"] == "req-123"
    assert second["msg"] == "outside" and "request_id" not in second
    logging.getLogger().handlers.clear()


def test_lines_logged_just_before_exit_are_written():
    program = (
        "import logging; from config.logging import configure_logging; configure_logging('INFO'); "
        "[logging.getLogger('t').info('line %d', i) for i in range(500)]"
    )
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=60, check=True)
    assert [json.loads(line)["msg"] for line in done.stderr.splitlines()] == [f"line {i}" for i in range(500)]

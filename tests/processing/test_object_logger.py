"""The records of ObjectLogger and the plain formatter's time text."""

from __future__ import annotations

import logging

import pytest

from trikopf.actions.loggers import ObjectLogger
from trikopf.cli import TextFormatter

BODY = {"metadata": {"namespace": "ns1", "name": "obj1", "uid": "uid-1"}}


class _Keep(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def kept() -> _Keep:
    logger = logging.getLogger("trikopf.test-object-logger")
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    handler = _Keep()
    logger.addHandler(handler)
    try:
        yield handler  # type: ignore[misc]
    finally:
        logger.removeHandler(handler)


def _logger() -> ObjectLogger:
    return ObjectLogger(BODY, logger=logging.getLogger("trikopf.test-object-logger"))


def test_record_names_the_callers_line_and_the_object(kept: _Keep) -> None:
    _logger().info("hello %s", "there", extra={"reason": "Success", "extra_key": 7})
    line = test_record_names_the_callers_line_and_the_object.__code__.co_firstlineno + 1
    (record,) = kept.records
    assert record.getMessage() == "[ns1/obj1] hello there"
    assert record.levelno == logging.INFO
    assert record.pathname == __file__
    assert record.funcName == "test_record_names_the_callers_line_and_the_object"
    assert record.lineno == line
    assert record.k8s_namespace == "ns1"  # type: ignore[attr-defined]
    assert record.k8s_uid == "uid-1"  # type: ignore[attr-defined]
    assert record.extra_key == 7  # type: ignore[attr-defined]
    assert not hasattr(record, "reason")


def test_a_reason_alone_leaves_only_the_objects_names_on_the_record(kept: _Keep) -> None:
    olog = _logger()
    olog.info("first", extra={"reason": "Success"})
    olog.info("second", extra={"reason": "Error", "extra_key": 8})
    olog.info("third")
    first, second, third = kept.records
    for record in (first, third):
        assert record.k8s_name == "obj1"  # type: ignore[attr-defined]
        assert record.k8s_namespace == "ns1"  # type: ignore[attr-defined]
        assert not hasattr(record, "reason")
        assert not hasattr(record, "extra_key")  # the second record's extra stays its own
    assert second.extra_key == 8  # type: ignore[attr-defined]
    assert olog.extra == {"k8s_namespace": "ns1", "k8s_name": "obj1", "k8s_uid": "uid-1"}


def test_exception_records_carry_the_exception(kept: _Keep) -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        _logger().exception("failed")
    _logger().error("given", exc_info=KeyError("k"))
    _logger().debug("plain")
    first, second, third = kept.records
    assert first.exc_info is not None
    assert isinstance(first.exc_info[1], ValueError)
    assert second.exc_info is not None
    assert isinstance(second.exc_info[1], KeyError)
    assert third.exc_info is None
    assert first.funcName == second.funcName == "test_exception_records_carry_the_exception"


def test_stacklevel_counts_outwards_from_the_caller(kept: _Keep) -> None:
    def helper() -> None:
        _logger().warning("from the helper", stacklevel=2)

    helper()
    (record,) = kept.records
    assert record.funcName == "test_stacklevel_counts_outwards_from_the_caller"


@pytest.mark.parametrize("created", [1_700_000_000.0, 1_700_000_000.25, 1_700_000_001.999])
def test_text_formatter_writes_the_stock_time(created: float) -> None:
    ours = TextFormatter("%(asctime)s %(message)s")
    stock = logging.Formatter("%(asctime)s %(message)s")
    for moment in (created, created + 0.5, created + 1.0):
        record = logging.makeLogRecord(
            {"msg": "m", "created": moment, "msecs": (moment % 1) * 1000}
        )
        assert ours.format(record) == stock.format(record)
    dated = logging.makeLogRecord({"msg": "m", "created": created})
    assert ours.formatTime(dated, "%Y") == stock.formatTime(dated, "%Y")

from typing import Any

import pytest
from pytest_bdd import given, parsers, scenarios, then, when

from domain.errors import ValidationFailed
from domain.message import ContentLimits, NewMessage

scenarios("validation.feature")

PLACEHOLDERS = {
    "<empty>": "",
    "<spaces>": "    ",
    "<long>": "x" * 51,
    "<nul>": "before\x00after",
    "<tenant129>": "t" * 129,
}


@pytest.fixture
def case() -> dict[str, Any]:
    return {}


def value(text: str) -> str:
    return PLACEHOLDERS.get(text, text)


@given(
    parsers.re(
        r'a new message with tenant "(?P<tenant>.*)", conversation "(?P<conversation>.*)", '
        r'role "(?P<role>.*)" and content "(?P<content>.*)"'
    )
)
def new_message(case: dict[str, Any], tenant: str, conversation: str, role: str, content: str) -> None:
    case["fields"] = {
        "tenant_id": value(tenant),
        "conversation_id": value(conversation),
        "role": value(role),
        "content": value(content),
    }


@when(parsers.re(r"it is validated with a content limit of (?P<limit>\d+) characters"))
def validated(case: dict[str, Any], limit: str) -> None:
    try:
        case["result"] = NewMessage.parse(**case["fields"], limits=ContentLimits(max_content_chars=int(limit)))
    except ValidationFailed as error:
        case["result"] = error


@then("it is accepted")
def accepted(case: dict[str, Any]) -> None:
    assert isinstance(case["result"], NewMessage)
    assert case["result"].content == case["fields"]["content"]


@then(parsers.re(r'it is refused naming "(?P<fields>[\w,]+)"'))
def refused(case: dict[str, Any], fields: str) -> None:
    assert isinstance(case["result"], ValidationFailed)
    assert [p.field for p in case["result"].problems] == fields.split(",")

Feature: Validating a new message
  A message is refused, with every broken field named, when its content is empty or
  too long, its role unknown, or its tenant or conversation id outside the safe
  charset (1-128 of A-Z a-z 0-9 . _ : @ -, starting with a letter or digit).

  Scenario Outline: A valid message is accepted
    Given a new message with tenant "<tenant>", conversation "<conversation>", role "<role>" and content "<content>"
    When it is validated with a content limit of 50 characters
    Then it is accepted

    Examples:
      | tenant             | conversation          | role      | content          |
      | acme               | c1                    | user      | hello            |
      | org.eu:team_1@prod | 2024-06-01-session.42 | assistant | hi there         |
      | T                  | x                     | tool      | {"ok": true}     |

  Scenario Outline: A broken rule names its field
    Given a new message with tenant "<tenant>", conversation "<conversation>", role "<role>" and content "<content>"
    When it is validated with a content limit of 50 characters
    Then it is refused naming "<field>"

    Examples:
      | tenant      | conversation | role      | content                                                  | field           |
      | acme        | c1           | user      |                                                          | content         |
      | acme        | c1           | user      | <spaces>                                                 | content         |
      | acme        | c1           | user      | <long>                                                   | content         |
      | acme        | c1           | bot       | hello                                                    | role            |
      | acme        | c1           | USER      | hello                                                    | role            |
      | acme corp   | c1           | user      | hello                                                    | tenant_id       |
      | <empty>     | c1           | user      | hello                                                    | tenant_id       |
      | -acme       | c1           | user      | hello                                                    | tenant_id       |
      | аcme        | c1           | user      | hello                                                    | tenant_id       |
      | acme/../x   | c1           | user      | hello                                                    | tenant_id       |
      | <tenant129> | c1           | user      | hello                                                    | tenant_id       |
      | acme        | c#1          | user      | hello                                                    | conversation_id |
      | acme        | c1           | user      | <nul>                                                    | content         |

  Scenario: Every broken field is named at once
    Given a new message with tenant "a b", conversation "c d", role "robot" and content ""
    When it is validated with a content limit of 50 characters
    Then it is refused naming "tenant_id,conversation_id,role,content"

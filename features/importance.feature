Feature: Importance of a message
  Every stored message gets an importance in [0, 1] before any query is asked.
  It starts from the speaker's role, moves with content signals, and an importance
  the client states wins, clamped into [0, 1].

  Scenario Outline: The role sets the starting point
    Given a <role> message "<content>"
    When its importance is scored
    Then the importance is <importance>

    Examples:
      | role      | content                           | importance |
      | system    | Answer in French from now on.     | 0.6        |
      | user      | Let us plan the trip to Lisbon.   | 0.5        |
      | assistant | Here is a plan for the trip.      | 0.4        |
      | tool      | {"status": "done"}                | 0.3        |

  Scenario Outline: Content signals move the score
    Given a <role> message "<content>"
    When its importance is scored
    Then the importance is <importance>

    Examples:
      | role      | content                                                                   | importance |
      | user      | Please remember that my wife is vegetarian.                               | 0.7        |
      | user      | The meeting moved to room 42.                                             | 0.55       |
      | user      | Could you tell me a bit more about how the train network works in Spain? | 0.55       |
      | user      | ok                                                                        | 0.3        |
      | assistant | Thanks!                                                                   | 0.2        |
      | tool      | ok                                                                        | 0.1        |

  Scenario Outline: An explicit importance wins and is clamped into [0, 1]
    Given a <role> message "<content>"
    And the client states importance <explicit>
    When its importance is scored
    Then the importance is <importance>

    Examples:
      | role | content                                      | explicit | importance |
      | user | ok                                           | 0.9      | 0.9        |
      | user | Please remember that my wife is vegetarian.  | 0.1      | 0.1        |
      | tool | {"status": "done"}                           | 1.7      | 1.0        |
      | user | Hello there                                  | -0.4     | 0.0        |

Feature: Retrying a failed embedding
  A message whose embedding fails is tried again after a wait that doubles each time,
  up to a cap, and after the last allowed try it is given up as failed.

  Background:
    Given at most 5 tries, a first wait of 2 seconds and waits capped at 10 seconds

  Scenario Outline: The wait doubles after each failed try, up to the cap
    When try <tries> has failed
    Then the next try waits <seconds> seconds

    Examples:
      | tries | seconds |
      | 1     | 2       |
      | 2     | 4       |
      | 3     | 8       |
      | 4     | 10      |

  Scenario: The last try gives up
    When try 5 has failed
    Then the message is given up as failed

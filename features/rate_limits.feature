Feature: Rate limits
  A bucket allows its whole limit at once, then one more request each period / limit.
  A refused request says how long to wait, and does not use up anything.

  Scenario: A fresh bucket allows exactly its limit at once
    Given a limit of 5/minute
    When 7 requests arrive at the same moment
    Then 5 are allowed and 2 are refused
    And the last refusal says to retry after 12 seconds

  Scenario: The bucket refills one request per period / limit
    Given a limit of 5/minute
    When 5 requests arrive at the same moment
    And 12 seconds pass
    Then 1 more request is allowed and the next is refused

  Scenario: After a whole period the bucket is full again
    Given a limit of 5/minute
    When 5 requests arrive at the same moment
    And 60 seconds pass
    Then 5 more requests are allowed

  Scenario Outline: Limits are written as a count per period
    Then "<text>" means <limit> requests per <seconds> seconds

    Examples:
      | text       | limit | seconds |
      | 200/minute | 200   | 60      |
      | 10/second  | 10    | 1       |
      | 1000/hours | 1000  | 3600    |
      | 5 / day    | 5     | 86400   |

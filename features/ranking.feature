Feature: Ranking search results
  final = w_sim * similarity + w_imp * importance + w_rec * recency,
  where recency = 0.5 ** (age / half_life).

  Background:
    Given the ranking weights similarity 0.7, importance 0.2, recency 0.1 and a half-life of 30 days

  Scenario Outline: Recency halves every half-life
    Then a message <age> days old has recency <recency>

    Examples:
      | age | recency |
      | 0   | 1.0     |
      | 30  | 0.5     |
      | 60  | 0.25    |
      | -5  | 1.0     |

  Scenario Outline: Equal similarity is broken by importance
    Given message "A" with similarity 0.8, importance <a_importance> and age 1 days
    And message "B" with similarity 0.8, importance <b_importance> and age 1 days
    When the messages are ranked
    Then the order is "<order>"

    Examples:
      | a_importance | b_importance | order |
      | 0.9          | 0.2          | A,B   |
      | 0.1          | 0.6          | B,A   |

  Scenario Outline: Old against new
    Given message "old" with similarity <old_similarity>, importance 0.5 and age 365 days
    And message "new" with similarity <new_similarity>, importance 0.5 and age 0 days
    When the messages are ranked
    Then the order is "<order>"

    Examples:
      | old_similarity | new_similarity | order   |
      | 0.80           | 0.80           | new,old |
      | 0.95           | 0.80           | old,new |
      | 0.82           | 0.80           | new,old |

  Scenario Outline: An explicit importance can lift a less similar message
    Given message "pinned" with similarity <pinned_similarity>, importance 1.0 and age 10 days
    And message "chatter" with similarity 0.8, importance 0.3 and age 10 days
    When the messages are ranked
    Then the order is "<order>"

    Examples:
      | pinned_similarity | order          |
      | 0.7               | pinned,chatter |
      | 0.55              | chatter,pinned |

  Scenario: Only the top k come back, with each score's parts
    Given message "A" with similarity 0.9, importance 0.5 and age 0 days
    And message "B" with similarity 0.5, importance 0.5 and age 0 days
    And message "C" with similarity 0.1, importance 0.5 and age 0 days
    When the messages are ranked keeping the top 2
    Then the order is "A,B"
    And message "A" scores similarity 0.9, importance 0.5, recency 1.0 and final 0.83

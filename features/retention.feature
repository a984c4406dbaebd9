Feature: Retention policy
  A policy archives old, unimportant messages (kept, readable by id, no longer searched)
  and deletes older ones (gone). Pinned messages and messages of a protected role are
  always kept. Age counts from when the message was said, or from its last restore.

  Background:
    Given a policy that archives after 30 days, deletes after 90 days, below importance 0.35, protecting system

  Scenario Outline: The rule table
    Given a <role> message <age> days old with importance <importance>, pinned <pinned>, archived <archived>
    When the policy decides
    Then the action is <action> because "<reason>"

    Examples:
      | role      | age | importance | pinned | archived | action  | reason                    |
      | user      | 10  | 0.2        | no     | no       | keep    | recent                    |
      | user      | 30  | 0.2        | no     | no       | keep    | recent                    |
      | user      | 31  | 0.2        | no     | no       | archive | older than 30 days        |
      | user      | 31  | 0.35       | no     | no       | keep    | important enough          |
      | user      | 31  | 0.34       | no     | no       | archive | older than 30 days        |
      | user      | 31  | 0.2        | no     | yes      | keep    | already archived          |
      | user      | 91  | 0.2        | no     | no       | delete  | older than 90 days        |
      | user      | 91  | 0.2        | no     | yes      | delete  | older than 90 days        |
      | user      | 400 | 0.9        | no     | no       | keep    | important enough          |
      | assistant | 400 | 0.1        | yes    | no       | keep    | pinned                    |
      | system    | 400 | 0.1        | no     | no       | keep    | role system is protected  |
      | tool      | 45  | 0.1        | no     | no       | archive | older than 30 days        |

  Scenario: An explicit importance of 1.0 pins a message
    Given a user message 400 days old with explicit importance 1.0
    When the policy decides
    Then the action is keep because "pinned"

  Scenario: A restored message counts its age from the restore
    Given a user message 60 days old with importance 0.1, restored 5 days ago
    When the policy decides
    Then the action is keep because "recent"

  Scenario: A restored message is archived again once the restore is old enough
    Given a user message 60 days old with importance 0.1, restored 40 days ago
    When the policy decides
    Then the action is archive because "older than 30 days"

  Scenario: Without delete_after_days nothing is ever deleted
    Given a policy that archives after 30 days, never deletes, below importance 0.35, protecting nothing
    And a user message 5000 days old with importance 0.0, pinned no, archived yes
    When the policy decides
    Then the action is keep because "already archived"

  Scenario: Without archive_after_days messages stay searchable until deleted
    Given a policy that never archives, deletes after 90 days, below importance 0.35, protecting nothing
    And a user message 60 days old with importance 0.1, pinned no, archived no
    When the policy decides
    Then the action is keep because "recent"

  Scenario Outline: A policy that makes no sense is refused, naming the field
    When a policy is made with <field> set to <value>
    Then it is refused naming "<field>"

    Examples:
      | field                | value |
      | delete_after_days    | 10    |
      | archive_after_days   | 0     |
      | archive_after_days   | -5    |
      | importance_threshold | 1.5   |
      | importance_threshold | -0.1  |

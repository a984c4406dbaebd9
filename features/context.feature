Feature: The context for a model's next turn
  The latest turns of a conversation and the memories that matter, each once, rendered as
  plain text that fits a token budget, counted by the real tokenizer (o200k_base).
  Two texts repeat each other when their normalised words are the same, or their word sets
  have a Jaccard index of at least 0.9.

  Background:
    Given a conversation of 6 turns about a trip to Lisbon
    And the recent turns get 0.5 of the budget

  Scenario: A memory already in the recent window is dropped
    Given search found the conversation's turn 4 and an older memory "I booked the hotel near Alfama"
    When the context is built with a budget of 1000 tokens
    Then the memories are "I booked the hotel near Alfama"
    And no message appears twice in the prompt

  Scenario: A turn of the window the budget leaves out of the recent turns may be a memory
    Given each turn is about 60 words long
    And the recent turns get 0.0 of the budget
    And search found the conversation's turn 2 and an older memory "I booked the hotel near Alfama"
    When the context is built with a budget of 300 tokens
    Then turn 2 is among the memories and not among the recent turns
    And no message appears twice in the prompt
    And the prompt counts at most 300 tokens with the real tokenizer

  Scenario: Exact and near repeats among memories collapse into the best ranked
    Given search found the older memories:
      | text                                                             |
      | My sister Ana lives in Porto and works as a nurse there          |
      | my sister ana lives in porto and works as a nurse there!         |
      | My sister Ana lives in Porto and works as a nurse there, really  |
      | The flight leaves at nine from gate 12                            |
    When the context is built with a budget of 1000 tokens
    Then the memories are "My sister Ana lives in Porto and works as a nurse there|The flight leaves at nine from gate 12"
    And the first memory's reason says "2 repeats of it left out"

  Scenario: A memory that repeats a recent turn is dropped
    Given search found an older memory repeating the newest turn
    When the context is built with a budget of 1000 tokens
    Then there are no memories
    And 1 repeat is counted as dropped

  Scenario Outline: The budget is never exceeded
    Given search found 12 older memories of about 40 words each
    When the context is built with a budget of <budget> tokens
    Then the prompt counts at most <budget> tokens with the real tokenizer
    And the newest turn is kept

    Examples:
      | budget |
      | 1      |
      | 5      |
      | 30     |
      | 64     |
      | 200    |
      | 500    |
      | 2000   |

  Scenario: The newest turn is kept even when the memories could take everything
    Given the recent turns get 0.0 of the budget
    And search found 12 older memories of about 40 words each
    When the context is built with a budget of 300 tokens
    Then the newest turn is kept
    And some memories are kept

  Scenario: A newest turn longer than its room is cut at a token boundary and marked as cut
    Given the newest turn is 3000 words long
    When the context is built with a budget of 400 tokens
    Then the newest turn is kept, cut and marked as cut
    And the prompt counts at most 400 tokens with the real tokenizer

  Scenario: What the memories leave unused flows to the recent turns
    When the context is built with a budget of 2000 tokens
    Then all 6 turns are in the recent turns
    And there are no memories

  Scenario: The budget is split between recent turns and memories
    Given each turn is about 60 words long
    And search found 12 older memories of about 40 words each
    When the context is built with a budget of 600 tokens
    Then the recent turns take at most 300 tokens
    And the memories take at least 250 tokens
    And the prompt counts at most 600 tokens with the real tokenizer

  Scenario: A memory too long for what is left is passed over, then goes in last, cut
    Given the recent turns get 0.0 of the budget
    And search found an older memory of 400 words, then 3 older memories of about 20 words each
    When the context is built with a budget of 300 tokens
    Then the 3 short memories are kept whole
    And the long memory is kept first among the memories, cut and marked as cut
    And the prompt counts at most 300 tokens with the real tokenizer

  Scenario: A memory names its conversation only when it is another one
    Given search found an older memory "We took the tram to Belem" of this conversation
    And search found an older memory "I booked the hotel near Alfama" from 2023-05-08
    When the context is built with a budget of 1000 tokens
    Then the prompt shows "conversation earlier, user] I booked the hotel near Alfama"
    And the line of "We took the tram to Belem" names no conversation

  Scenario: Dates are shown so the model can reason about time
    Given search found an older memory "I booked the hotel near Alfama" from 2023-05-08
    When the context is built with a budget of 1000 tokens
    Then the prompt shows "2023-05-08"

  Scenario: An empty conversation with nothing found is an empty context
    Given an empty conversation
    When the context is built with a budget of 100 tokens
    Then the prompt is empty and counts 0 tokens

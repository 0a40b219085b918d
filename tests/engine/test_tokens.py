"""The prompt budget: system prompt and new message always kept, oldest turns dropped first."""
from engine.tokens import estimate_tokens, fit_history


def turns(*contents: str) -> list[dict[str, str]]:
    roles = ["user", "assistant"]
    return [{"role": roles[i % 2], "content": c} for i, c in enumerate(contents)]


def test_estimate_counts_chinese_per_character_and_english_per_four():
    assert estimate_tokens("退货要几天") == 5
    assert estimate_tokens("a" * 40) == 10
    assert estimate_tokens("") == 0


def test_everything_fits():
    history = turns("hi", "hello", "how long do returns take?")
    prompt = fit_history("SYSTEM", history, budget=1000)
    assert prompt[0] == {"role": "system", "content": "SYSTEM"} and prompt[1:] == history


def test_oldest_turns_dropped_first_and_history_starts_with_the_customer():
    history = turns("old question " * 20, "old answer " * 20, "recent question", "recent answer", "new question")
    prompt = fit_history("SYSTEM", history, budget=60)
    assert [m["content"] for m in prompt[1:]] == ["recent question", "recent answer", "new question"]


def test_system_prompt_and_new_message_kept_even_over_budget():
    history = turns("q1", "a1", "字" * 500)
    prompt = fit_history("S" * 400, history, budget=50)
    assert prompt == [{"role": "system", "content": "S" * 400}, history[-1]]


def test_no_orphan_assistant_turn_at_the_start():
    history = turns("q" * 400, "short answer", "new")
    prompt = fit_history("SYSTEM", history, budget=30)
    assert [m["role"] for m in prompt] == ["system", "user"]

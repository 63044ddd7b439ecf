"""Real inspect_ai logs, written offline: inspect's ``mockllm/model`` answers arithmetic questions by a script
(right on even numbers, "7" otherwise), a scripted scorer grades them with letter grades C/I/P, and inspect's
own ``match`` scorer runs second. Needs ``inspect_ai`` installed."""

from __future__ import annotations

from pathlib import Path

QUESTIONS = 4
SYSTEM_MESSAGE = "Answer with a number."


def scripted_answer(number: int) -> str:
    return str(2 * number) if number % 2 == 0 else "7"


def write_inspect_logs(log_dir: Path, *, log_format: str = "eval", epochs: int = 2, task_name: str = "arith",
                       temperature: float = 0.0, seed: int = 5) -> Path:
    """Run one inspect task on mockllm and return its log file."""
    from inspect_ai import Task, eval as inspect_eval
    from inspect_ai.dataset import Sample
    from inspect_ai.model import ModelOutput, ModelUsage, get_model
    from inspect_ai.scorer import CORRECT, INCORRECT, PARTIAL, Score, Target, accuracy, match, scorer
    from inspect_ai.solver import generate, system_message

    def answer(messages, tools, tool_choice, config):
        number = int(messages[-1].text.split()[2].split("+")[0])
        output = ModelOutput.from_content("mockllm/model", scripted_answer(number))
        # Token usage given, so that mockllm does not download a tokenizer to count it.
        output.usage = ModelUsage(input_tokens=8, output_tokens=1, total_tokens=9)
        return output

    @scorer(metrics=[accuracy()])
    def graded():
        async def score(state, target: Target):
            text = state.output.completion
            partial = text == "7" and target.text == "2"  # 1+1 answered 7: partly right, for the P grade
            return Score(value=CORRECT if text == target.text else PARTIAL if partial else INCORRECT, answer=text)

        return score

    samples = [Sample(id=f"q{i}", input=f"What is {i}+{i}?", target=str(2 * i)) for i in range(QUESTIONS)]
    task = Task(name=task_name, dataset=samples, solver=[system_message(SYSTEM_MESSAGE), generate()],
                scorer=[graded(), match()], epochs=epochs)
    model = get_model("mockllm/model", custom_outputs=answer)
    [log] = inspect_eval(task, model=model, log_dir=str(log_dir), log_format=log_format, display="none",
                         temperature=temperature, max_tokens=16, seed=seed)
    assert log.status == "success", log.error
    return Path(log.location)


def write_choice_log(log_dir: Path, tops: list[list[tuple[str, float]]], *, log_format: str = "eval") -> Path:
    """An inspect log of the ``multiple_choice`` solver generating with logprobs: mockllm writes "ANSWER: <letter>"
    (letter: the first of item i's ``tops``), token by token, with ``tops[i]`` as the top_logprobs of the letter token."""
    from inspect_ai import Task, eval as inspect_eval
    from inspect_ai.dataset import Sample
    from inspect_ai.model import (ChatCompletionChoice, ChatMessageAssistant, Logprob, Logprobs, ModelOutput, ModelUsage,
                                  TopLogprob, get_model)
    from inspect_ai.scorer import choice
    from inspect_ai.solver import multiple_choice

    def answer(messages, tools, tool_choice, config):
        assert config.logprobs and config.top_logprobs
        top = tops[int(messages[-1].text.split("Question ")[1].split("?")[0])]
        letter = top[0][0]
        tokens = [Logprob(token="ANSWER", logprob=-0.01), Logprob(token=":", logprob=-0.02),
                  Logprob(token=letter, logprob=top[0][1], top_logprobs=[TopLogprob(token=t, logprob=p) for t, p in top])]
        message = ChatMessageAssistant(content=f"ANSWER:{letter}", model="mockllm/model")
        output = ModelOutput(model="mockllm/model", choices=[ChatCompletionChoice(message=message, stop_reason="stop", logprobs=Logprobs(content=tokens))])
        output.usage = ModelUsage(input_tokens=8, output_tokens=3, total_tokens=11)
        return output

    samples = [Sample(id=f"q{i}", input=f"Question {i}?", choices=["w", "x", "y", "z"], target="B") for i in range(len(tops))]
    task = Task(name="mc", dataset=samples, solver=[multiple_choice()], scorer=choice())
    [log] = inspect_eval(task, model=get_model("mockllm/model", custom_outputs=answer), log_dir=str(log_dir), log_format=log_format,
                         display="none", logprobs=True, top_logprobs=5, temperature=0.0, max_tokens=8)
    assert log.status == "success", log.error
    return Path(log.location)

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

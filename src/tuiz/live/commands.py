"""Commands built from what clients send, one shape for sockets and REST."""

from __future__ import annotations

from tuiz.game.model import SubmitAnswer


def answer_command(
    player_id: str,
    question_id: str,
    *,
    answer_id: str | None,
    choice_ids: list[str] | None,
    answer: str | None,
    text: str | None,
) -> SubmitAnswer:
    """Without a client answer id, one per player and question, so the TUIZ client's REST
    submit and its socket echo are the same answer. Anything the client says about
    correctness, time or points is not part of a command: the server decides those."""
    choices = tuple(choice_ids or ([answer] if answer else []))
    return SubmitAnswer(
        actor=player_id,
        question_id=question_id,
        answer_id=answer_id or f"{player_id}:{question_id}",
        choice_ids=choices,
        text=text,
    )

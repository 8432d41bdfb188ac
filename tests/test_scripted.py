"""The scripted endpoint holds the load it is used to measure (bench/throughput.py drives it at 64)."""

from __future__ import annotations

import asyncio

import httpx

from tutelage.testing import ScriptedServer


def test_the_scripted_endpoint_answers_64_concurrent_connections_without_resetting_any() -> None:
    body = {"model": "student", "messages": [{"role": "user", "content": "my card has not arrived"}]}

    async def burst(base: str) -> list[httpx.Response | BaseException]:
        limits = httpx.Limits(max_connections=64)
        async with httpx.AsyncClient(base_url=base, timeout=30, limits=limits) as client:
            posts = [client.post("/chat/completions", json=body) for _ in range(64)]
            return await asyncio.gather(*posts, return_exceptions=True)

    with ScriptedServer(lambda request: "card_arrival", delay=0.02) as server:
        replies = asyncio.run(burst(server.api_base))
    failed = [r for r in replies if isinstance(r, BaseException)]
    assert not failed, f"{len(failed)} of 64 requests failed, first: {failed[0]!r}"
    answers = [r.json()["choices"][0]["message"]["content"] for r in replies if isinstance(r, httpx.Response)]
    assert answers == ["card_arrival"] * 64
    assert len(server.chat_requests()) == 64

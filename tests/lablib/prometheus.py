"""The lab Prometheus (tests/lab/prometheus) as the tests ask it: instant queries and alert states."""

from __future__ import annotations

import requests


class Prometheus:
    def __init__(self, url: str):
        self.url = url

    def series(self, query: str) -> list[tuple[dict[str, str], float]]:
        """Each series of an instant query: its labels and value."""
        answer = requests.get(f"{self.url}/api/v1/query", params={"query": query}, timeout=10).json()
        return [(found["metric"], float(found["value"][1])) for found in answer["data"]["result"]]

    def value(self, query: str) -> float | None:
        found = self.series(query)
        return found[0][1] if found else None

    def alert_state(self, name: str) -> str:
        alerts = requests.get(f"{self.url}/api/v1/alerts", timeout=10).json()["data"]["alerts"]
        return next((a["state"] for a in alerts if a["labels"]["alertname"] == name), "inactive")

"""``AlertChannels``: where alerts go — the log always, and each configured channel:

* Microsoft Teams through ``dagster-msteams`` (``MSTeamsResource``, an incoming-webhook or
  Workflows URL), as an adaptive card;
* Slack through ``dagster-slack`` (``SlackResource``, a bot token) with ``chat.postMessage`` to
  ``slack_channel``; ``slack_base_url`` points the SDK's ``WebClient`` elsewhere (a proxy, or the
  tests' loopback receiver);
* a generic JSON webhook (``webhook_url``): a POST of the alert as JSON.

URLs with tokens and the Slack token are secrets: they arrive as ``dg.EnvVar`` and are never
logged; a delivery error names the channel, not its URL.
"""

from __future__ import annotations

import logging

import dagster as dg
import requests
from dagster_msteams import MSTeamsResource
from dagster_msteams.adaptive_card import AdaptiveCard
from dagster_slack import SlackResource

from conv_pipeline.core.reporting.alerts import Alert


class AlertChannels(dg.ConfigurableResource):
    """The URLs and the token are plain fields (given as ``dg.EnvVar``); the Teams and Slack
    clients are dagster-msteams' ``MSTeamsResource`` and dagster-slack's ``SlackResource``,
    built per message."""

    webhook_url: str | None = None
    teams_hook_url: str | None = None
    slack_token: str | None = None
    slack_channel: str = ""
    slack_base_url: str = ""
    ui_url: str = "http://127.0.0.1:3000"
    timeout_seconds: float = 10.0

    def channels(self) -> list[str]:
        out = ["log"]
        if self.teams_hook_url:
            out.append("teams")
        if self.slack_token:
            out.append("slack")
        if self.webhook_url:
            out.append("webhook")
        return out

    def send(self, channel: str, alert: Alert, log: logging.Logger) -> None:
        """Deliver ``alert`` to ``channel``; raises ``RuntimeError`` (secret-free) on failure."""
        try:
            if channel == "log":
                (log.warning if alert.kind != "recovered" else log.info)(alert.text())
            elif channel == "teams":
                card = AdaptiveCard()
                for line in alert.text().split("\n"):
                    card.add_attachment(line)
                MSTeamsResource(hook_url=self.teams_hook_url).get_client().post_message(
                    card.payload
                )
            elif channel == "slack":
                client = SlackResource(token=self.slack_token).get_client()
                if self.slack_base_url:
                    client.base_url = self.slack_base_url.rstrip("/") + "/"
                client.chat_postMessage(channel=self.slack_channel, text=alert.text())
            elif channel == "webhook":
                r = requests.post(
                    self.webhook_url, json=alert.payload(), timeout=self.timeout_seconds
                )
                if not r.ok:
                    raise RuntimeError(f"HTTP {r.status_code}")
            else:
                raise RuntimeError("unknown channel")
        except Exception as exc:  # noqa: BLE001 - re-raised without URLs or tokens
            detail = type(exc).__name__
            if isinstance(exc, RuntimeError) and str(exc).startswith("HTTP"):
                detail = str(exc)
            raise RuntimeError(f"alert delivery to {channel} failed ({detail})") from None

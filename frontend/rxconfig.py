"""Reflex configuration of the web app (ports come from the command line, never from here)."""

import reflex as rx

config = rx.Config(
    app_name="ocr_web",
    telemetry_enabled=False,
    show_built_with_reflex=False,
    plugins=[
        rx.plugins.SitemapPlugin(),
        rx.plugins.RadixThemesPlugin(theme=rx.theme(accent_color="indigo", radius="medium")),
    ],
)

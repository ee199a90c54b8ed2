from ocr_web.sanitize import safe_markdown


def test_scripts_event_handlers_and_images_are_removed():
    out = safe_markdown('<img src=x onerror=alert(1)>Hi<script>alert(2)</script><b onclick="x()">b</b>')
    assert "<img" not in out and "onerror" not in out and "<script" not in out and "onclick" not in out
    assert "Hi" in out and "<b>b</b>" in out


def test_tables_survive_with_spans_only():
    out = safe_markdown('<table><tr><td colspan="2" style="color:red" onmouseover="x()">A</td></tr></table>')
    assert '<td colspan="2">A</td>' in out
    assert "style" not in out and "onmouseover" not in out


def test_markdown_images_and_link_definitions_load_nothing():
    out = safe_markdown(
        "![tracker](https://evil.example/p.png)\n\n![ref][1]\n\n[1]: https://evil.example/x.png\n"
    )
    assert "evil.example" not in out
    assert "tracker" in out


def test_javascript_links_lose_their_href_and_iframes_go():
    out = safe_markdown('<a href="javascript:alert(1)">x</a><iframe src="https://evil.example"></iframe>')
    assert "javascript:" not in out and "<iframe" not in out


def test_plain_markdown_is_unchanged():
    text = "# Title\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n**bold** and *it*"
    assert safe_markdown(text) == text

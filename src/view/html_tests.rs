use serde_json::json;

use super::*;

#[test]
fn a_code_cell_shows_highlighted_source_and_its_outputs_in_order() {
    let cell = json!({"cell_type": "code", "id": "a", "metadata": {}, "execution_count": 3,
    "source": ["x = 1\n", "print(x)"],
    "outputs": [
        {"output_type": "stream", "name": "stdout", "text": "hi <b>\n"},
        {"output_type": "execute_result", "execution_count": 3, "metadata": {},
         "data": {"text/plain": ["1"], "application/json": {"a": 1}}},
        {"output_type": "display_data", "metadata": {}, "data": {"image/png": "iVBO\nRw==\n", "text/plain": "<Figure>"}},
        {"output_type": "error", "ename": "ValueError", "evalue": "bad",
         "traceback": ["\u{1b}[0;31mValueError\u{1b}[0m: bad"]},
    ]});
    let html = super::cell(7, &cell.to_string());
    assert!(
        html.starts_with("<div class=\"cell code\" id=\"i7\"><div class=\"prompt\">[3]:</div>"),
        "{html}"
    );
    // Highlighted: the keyword `print` gets a class; the text is intact once tags are gone.
    assert!(html.contains("hl-"), "{html}");
    let stream = html
        .find("<pre class=\"out stream stdout\">hi &lt;b&gt;\n</pre>")
        .expect("stream");
    let json_out = html.find("<pre class=\"out json\">").expect("json result");
    let img = html
        .find("<img class=\"out\" alt=\"image/png output\" src=\"data:image/png;base64,iVBORw==\">")
        .expect("image");
    let err = html.find("<pre class=\"out error\">").expect("error");
    assert!(stream < json_out && json_out < img && img < err, "{html}");
    // The traceback keeps its colour.
    assert!(
        html.contains("<span style='color:var(--red,#a00)'>ValueError</span>: bad"),
        "{html}"
    );
}

#[test]
fn markdown_is_rendered_and_raw_html_in_it_is_text() {
    let cell = json!({"cell_type": "markdown", "id": "m", "metadata": {},
        "source": "# Title\n\n*seen* <script>alert(1)</script>"});
    assert_eq!(
        super::cell(0, &cell.to_string()),
        "<div class=\"cell md\" id=\"i0\"><div class=\"prompt\"></div><div class=\"body\"><h1>Title</h1>\n\
         <p><em>seen</em> &lt;script&gt;alert(1)&lt;/script&gt;</p>\n</div></div>"
    );
}

#[test]
fn kernel_html_goes_into_a_frame_that_runs_no_script() {
    let mut data = std::collections::BTreeMap::new();
    data.insert(
        "text/html".to_string(),
        json!("<table><tr><td>1</td></tr></table>"),
    );
    data.insert("text/plain".to_string(), json!("df"));
    assert_eq!(
        bundle(&data),
        "<iframe class=\"out html\" sandbox=\"allow-same-origin\" \
         srcdoc=\"&lt;table&gt;&lt;tr&gt;&lt;td&gt;1&lt;/td&gt;&lt;/tr&gt;&lt;/table&gt;\"></iframe>"
    );
}

#[test]
fn url_segments_are_percent_encoded() {
    assert_eq!(segment("probe-2.x_y~"), "probe-2.x_y~");
    assert_eq!(segment("a b/c?"), "a%20b%2Fc%3F");
}

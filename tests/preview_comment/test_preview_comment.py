import json
import random
import re
import subprocess
import sys

import pytest

from berth import preview as pc

LIMIT = pc.GITHUB_COMMENT_LIMIT


# --------------------------------------------------------------------------- helpers


def load(fixtures_dir, name, label=None, events=None, exit_code=None):
    return pc.load_stack(
        label or name.split(".")[0],
        str(fixtures_dir / name),
        str(fixtures_dir / events) if events else None,
        exit_code,
    )


def header(body):
    """Everything before the first stack section."""
    return body.split("\n### ", 1)[0]


def outside_code(body):
    """The body with fenced blocks and inline code spans removed."""
    body = re.sub(r"(?ms)^(`{3,})[^\n]*\n.*?^\1\s*$", "", body)
    return re.sub(r"(`+)(?:(?!\1).)+?\1", "", body)


def assert_well_formed(body):
    assert body.startswith(pc.MARKER + "\n")
    assert body.count(pc.MARKER) == 1
    depth = 0
    for tag in re.findall(r"</?details>", body):
        depth += 1 if tag == "<details>" else -1
        assert 0 <= depth <= 1, "details blocks must be closed and never nested"
    assert depth == 0
    assert body.count("<summary>") == body.count("</summary>") == body.count("<details>")
    fences = re.findall(r"(?m)^`{3,}", body)
    assert len(fences) % 2 == 0, "a fenced code block was cut"


# --------------------------------------------------------------------------- basics


def test_marker_is_the_first_line_and_title_is_escaped(fixtures_dir):
    body = pc.render_comment([load(fixtures_dir, "dev_changes.json")], title="Preview <b>for</b> #12")
    assert body.splitlines()[0] == "<!-- berth-preview -->"
    assert "<b>for</b>" not in body.splitlines()[1]
    assert "&lt;b&gt;for&lt;/b&gt;" in body.splitlines()[1]


def test_creates_and_updates_counted_from_steps(fixtures_dir):
    r = load(fixtures_dir, "dev_changes.json", label="docker-dev")
    assert r.counts == {"create": 2, "update": 3, "replace": 0, "delete": 0, "same": 2}
    body = pc.render_comment([r])
    assert "| 2 | 3 | 0 | 0 | 2 |" in body
    # stack and project come from the URNs, not from the label
    assert "Project `berth`, stack `dev`" in body
    assert "### docker-dev — ✅ ok" in body
    assert "<summary><code>+</code> create <code>docker:index/container:Container</code> <b>shop-web</b></summary>" in body
    assert '`image` *update*: `"registry.example.com/berth/shop-worker:1.3.0"` → `"registry.example.com/berth/shop-worker:1.4.0"`' in body
    assert "`repoDigest` *update*: `\"sha256:aaaa\"` → *(known after apply)*" in body
    assert pc.UNKNOWN not in body


def test_counts_follow_steps_not_change_summary(fixtures_dir):
    # The real capture this fixture is modelled on: changeSummary says same=2 but only
    # the root stack is a step.
    r = load(fixtures_dir, "exp_prod_observed.json")
    assert r.counts == {"create": 1, "update": 1, "replace": 2, "delete": 1, "same": 1}
    assert (r.project, r.stack) == ("exp", "prod")
    body = pc.render_comment([r])
    assert "Replaced because of: `content`\n" in body  # replaceReasons, not the long diffReasons
    assert "`environment.ADDED` *add*: — → `\"new\"`" in body
    assert "No stateful resources are replaced or deleted." in body


def test_update_of_a_stateful_type_is_not_flagged(fixtures_dir):
    body = pc.render_comment([load(fixtures_dir, "dev_changes.json")])
    assert "will be replaced or deleted" not in body
    assert "No stateful resources are replaced or deleted." in body
    assert "randomPassword" in body  # still listed among the changes


# --------------------------------------------------------------------------- stateful flagging


def test_db_volume_replace_is_flagged_in_bold_at_the_top(fixtures_dir):
    body = pc.render_comment([load(fixtures_dir, "dev_db_volume_replace.json", label="dev")])
    top = header(body)
    assert "**⚠️ 3 stateful resources will be replaced or deleted" in top
    assert "- **REPLACE** `docker:index/volume:Volume` `orders-data` in **dev** (Docker volume) — because of `driverOpts`" in top
    # child of berth:index:Database, reason from detailedDiff *-replace kinds only
    assert "`orders-db` in **dev** (part of a Berth database) — because of `volumes[0].volumeName`\n" in top
    # a redis container outside the component, reason only in diffReasons
    assert "`sessions` in **dev** (database container) — because of `image`" in top
    # the stateless web container is replaced but not flagged
    assert "`web`" not in top
    assert "<b>web</b></summary>" in body
    assert top.index("will be replaced or deleted") < body.index("\n### ")


def test_pvc_delete_and_statefulset_replace_are_flagged(fixtures_dir):
    body = pc.render_comment([load(fixtures_dir, "prod_k8s.json", label="prod")])
    top = header(body)
    assert "- **DELETE** `kubernetes:core/v1:PersistentVolumeClaim` `uploads` in **prod** (PersistentVolumeClaim)" in top
    assert ("- **REPLACE** `kubernetes:apps/v1:StatefulSet` `postgres` in **prod** (StatefulSet) — because of "
            "`spec.volumeClaimTemplates[0].spec.resources.requests.storage`") in top
    assert "Deployment" not in top  # only updated


@pytest.mark.parametrize(
    "chain, op, flagged",
    [
        ("docker:index/volume:Volume", "replace", True),
        ("kubernetes:core/v1:PersistentVolumeClaim", "delete", True),
        ("kubernetes:apps/v1:StatefulSet", "delete", True),
        ("kubernetes:core/v1:Secret", "replace", True),
        ("kubernetes:core/v1:Namespace", "delete", True),
        ("random:index/randomPassword:RandomPassword", "replace", True),
        ("berth:index:Database", "delete", True),
        ("berth:index:Cache$kubernetes:apps/v1:Deployment", "replace", True),
        ("berth:index:App$berth:index:Database$kubernetes:core/v1:Service", "delete", True),
        ("kubernetes:apps/v1:Deployment", "replace", False),
        ("kubernetes:core/v1:PersistentVolumeClaim", "update", False),
        ("berth:index:App$docker:index/container:Container", "delete", False),
    ],
)
def test_stateful_classification(chain, op, flagged):
    urn = f"urn:pulumi:prod::berth::{chain}::thing"
    doc = {"steps": [{"op": op, "urn": urn, "detailedDiff": None}], "diagnostics": [], "changeSummary": {}}
    r = pc.analyze_preview("prod", doc)
    assert bool(r.flagged) is flagged


def test_database_container_recognised_from_image():
    def step(image):
        return {"op": "delete", "urn": "urn:pulumi:dev::berth::docker:index/container:Container::c",
                "oldState": {"type": "docker:index/container:Container", "inputs": {"image": image}},
                "detailedDiff": None}
    for image, expected in [("postgres:16", True), ("registry.local:5000/library/mysql", True),
                            ("registry.example.com/bitnami/redis:7.2@sha256:abcd", True), ("nginx:1.27", False),
                            ("registry.example.com/berth/postgres-exporter:1.0", True), ("registry.example.com/berth/web:1.0", False)]:
        r = pc.analyze_preview("dev", {"steps": [step(image)], "changeSummary": {}})
        assert bool(r.flagged) is expected, image


def test_replace_reason_fallbacks():
    assert pc.replace_reasons({"replaceReasons": ["b", "a"], "diffReasons": ["z"],
                               "detailedDiff": {"x": {"kind": "update-replace"}}}) == ["a", "b"]
    assert pc.replace_reasons({"detailedDiff": {"x": {"kind": "update"}, "y": {"kind": "add-replace"}},
                               "diffReasons": ["z"]}) == ["y"]
    assert pc.replace_reasons({"detailedDiff": {"x": {"kind": "update"}}, "diffReasons": ["z"]}) == ["x"]
    assert pc.replace_reasons({"detailedDiff": None, "diffReasons": ["z", "image"]}) == ["image", "z"]
    assert pc.replace_reasons({"detailedDiff": None}) == []


def test_show_replacement_steps_are_merged_into_one_replace():
    urn = "urn:pulumi:dev::berth::docker:index/volume:Volume::data"
    doc = {"steps": [
        {"op": "delete-replaced", "urn": urn, "oldState": {"type": "docker:index/volume:Volume"}, "detailedDiff": None},
        {"op": "create-replacement", "urn": urn, "replaceReasons": ["name"], "detailedDiff": None},
        {"op": "replace", "urn": urn, "detailedDiff": None},
    ], "changeSummary": {}}
    r = pc.analyze_preview("dev", doc)
    assert r.counts["replace"] == 1
    assert [c.reasons for c in r.flagged] == [["name"]]


# --------------------------------------------------------------------------- secrets


def test_secret_values_never_shown(fixtures_dir):
    body = pc.render_comment([load(fixtures_dir, "dev_changes.json"), load(fixtures_dir, "prod_k8s.json")])
    # "[secret]" inside a longer string masks the whole value
    assert "postgres://shop" not in body
    assert "- `envs`: `[secret]`" in body
    assert "`envs[2]` *update*: `[secret]` → `[secret]`" in body
    # Kubernetes Secret data is never printed, even the parts Pulumi did not mark secret
    assert "`data[\"DB_PASSWORD\"]` *update*: `[secret]` → `[secret]`" in body
    assert "YXBw" not in body and "c2hvcA==" not in body
    # config is not rendered at all
    assert "registryToken" not in body and "adminPassword" not in body


def test_unmarked_sensitive_properties_are_hidden():
    urn = "urn:pulumi:dev::berth::custom:index:Thing::t"
    doc = {"steps": [{
        "op": "update", "urn": urn,
        "oldState": {"type": "custom:index:Thing", "inputs": {"adminPassword": "hunter2", "size": 1,
                                                              "conn": {"apiToken": "abc123"}}},
        "newState": {"type": "custom:index:Thing", "inputs": {"adminPassword": "hunter3", "size": 2,
                                                              "conn": {"apiToken": "abc124"}}},
        "diffReasons": ["adminPassword", "conn", "size"],
        "detailedDiff": {"adminPassword": {"kind": "update", "inputDiff": True},
                         "conn.apiToken": {"kind": "update", "inputDiff": True},
                         "size": {"kind": "update", "inputDiff": True}},
    }], "changeSummary": {}}
    body = pc.render_comment([pc.analyze_preview("dev", doc)])
    assert "hunter" not in body and "abc12" not in body
    assert "`adminPassword` *update*: *(hidden)* → *(hidden)*" in body
    assert "`size` *update*: `1` → `2`" in body


# --------------------------------------------------------------------------- policy


def test_policy_violations_from_event_log(fixtures_dir):
    r = load(fixtures_dir, "prod_k8s.json", label="prod", events="prod_events.ndjson")
    assert [v.level for v in r.violations] == ["mandatory", "mandatory", "advisory", "advisory", "advisory"]
    body = pc.render_comment([r])
    assert "**🚫 2 mandatory policy violations**" in header(body)
    assert "### prod — 🚫 blocked by policy" in body
    section = body.split("**Policy violations:**", 1)[1].split("\n\n", 2)[1]
    lines = section.splitlines()
    assert len(lines) == 5
    assert lines[0] == ("- 🚫 **mandatory** `berth-policies@0.1.0` / `pvc-backup-label` on "
                        "`kubernetes:core/v1:PersistentVolumeClaim` `uploads`: Volumes holding data need a "
                        "backup label. PVC 'uploads' has no berth.dev/backup label.")
    assert lines[1].startswith("- 🚫 **mandatory** (high) `berth-policies@0.1.0` / `statefulset-retain-volumes` "
                               "on `kubernetes:apps/v1:StatefulSet` `postgres`")
    assert all("advisory" in line for line in lines[2:])
    assert "container 'web' has no &lt;limits&gt; &amp; no &lt;requests&gt;" in body
    assert "`stack-exports-url` on the stack: The stack should export an \\`url\\` output." in body


def test_policy_events_deduplicated_and_unreadable_lines_reported(tmp_path, fixtures_dir):
    text = (fixtures_dir / "prod_events.ndjson").read_text()
    lines = text.splitlines()
    log = tmp_path / "events.ndjson"
    log.write_text("\n".join(lines + [lines[3], '{"sequence": 99, "policyEv']) + "\n")
    r = pc.load_stack("prod", str(fixtures_dir / "prod_k8s.json"), str(log))
    assert len(r.violations) == 5
    assert r.problems == ["1 line of the event log could not be read."]


def test_colors_and_ansi_are_stripped(fixtures_dir):
    results = [load(fixtures_dir, "prod_k8s.json", label="prod", events="prod_events.ndjson"),
               load(fixtures_dir, "failed_preview.json", label="dev", exit_code=255)]
    body = pc.render_comment(results)
    assert "\x1b" not in body
    assert "<{%" not in body and "%}>" not in body and "&lt;{%" not in body
    assert "[31m" not in body and "[0m" not in body
    assert pc.strip_colors("\x1b[1;31merror:\x1b[0m <{%fg 1%}>x<{%reset%}> \x1b]8;;http://a\x07l\x1b]8;;\x07") == "error: x l"


# --------------------------------------------------------------------------- errors


def test_failed_preview_shows_errors(fixtures_dir):
    r = load(fixtures_dir, "failed_preview.json", label="dev", exit_code=255)
    assert r.failed
    body = pc.render_comment([r])
    assert "**❌ Preview failed for dev.**" in header(body)
    assert "### dev — ❌ preview failed" in body
    assert "exit code 255" in body
    assert "**Errors (2):**" in body
    assert "```text\nerror: an unhandled error occurred: Program exited with non-zero exit code: 1\n```" in body
    # inside a fenced block the message keeps its characters (no entities needed there)
    assert "ValueError: database <orders> needs a size & a backup policy" in body
    assert "Program output (stderr)" in body


def test_missing_or_empty_preview_output_is_a_failure(tmp_path, fixtures_dir):
    empty = tmp_path / "empty.json"
    empty.write_text("")
    events = tmp_path / "events.ndjson"
    events.write_text(json.dumps({"sequence": 0, "timestamp": 1, "diagnosticEvent": {
        "message": "\x1b[31merror:\x1b[0m could not load plugin docker", "severity": "error"}}) + "\n")
    r1 = pc.load_stack("dev", str(empty), str(events), 255)
    r2 = pc.load_stack("prod", str(tmp_path / "nope.json"))
    assert r1.failed and r2.failed
    body = pc.render_comment([r1, r2])
    assert "is empty" in body and "was not found" in body
    assert "could not load plugin docker" in body  # fell back to the event log's diagnostics
    assert "**❌ Preview failed for dev, prod.**" in body
    assert_well_formed(body)


def test_warnings_are_folded(fixtures_dir):
    body = pc.render_comment([load(fixtures_dir, "prod_k8s.json")])
    assert "<summary>1 warning</summary>" in body
    assert "&lt;spec.template.spec.serviceAccount&gt;" in body


# --------------------------------------------------------------------------- escaping


def test_html_ish_content_is_escaped_outside_code(fixtures_dir):
    urn = "urn:pulumi:dev::berth::docker:index/container:Container::<img src=x onerror=alert(1)>"
    doc = {"steps": [{"op": "create", "urn": urn, "newState": {"type": "docker:index/container:Container",
                                                               "inputs": {"name": "a|b `c`"}},
                      "detailedDiff": None}], "changeSummary": {}}
    bodies = pc.render_comment([load(fixtures_dir, "prod_k8s.json", events="prod_events.ndjson"),
                                pc.analyze_preview("dev", doc)])
    plain = outside_code(bodies)
    assert "<script>" not in plain
    assert "<img" not in plain and "<limits>" not in plain
    assert "<b>&lt;img src=x onerror=alert(1)&gt;</b>" in bodies
    # the ConfigMap content shows literally inside a code span
    assert '`"feature.search=on\\nbanner=<script>alert(1)</script> & enjoy | v2"`' in bodies
    assert "- `name`: ``\"a|b `c`\"``" in bodies


def test_inline_helpers():
    assert pc.md_code("a`b") == "``a`b``"
    assert pc.md_code("`x") == "`` `x ``"
    assert pc.md_text("*bold* <i> & _x_ [l](u) @team") == "\\*bold\\* &lt;i&gt; &amp; \\_x\\_ \\[l\\](u) @\u200bteam"
    assert pc.html_text('<a href="x">@me</a>') == "&lt;a href=&quot;x&quot;&gt;@\u200bme&lt;/a&gt;"
    assert pc.parse_path('spec.containers[0].image') == ["spec", "containers", 0, "image"]
    assert pc.parse_path('data["app.properties"]') == ["data", "app.properties"]
    assert pc.parse_path('metadata.labels["a\\"b"][2]') == ["metadata", "labels", 'a"b', 2]
    u = pc.parse_urn("urn:pulumi:prod::berth::berth:index:Database$docker:index/volume:Volume::a::b")
    assert (u.stack, u.project, u.type, u.name) == ("prod", "berth", "docker:index/volume:Volume", "a::b")
    assert u.type_chain[0] == "berth:index:Database"


# --------------------------------------------------------------------------- multi-stack & determinism


def test_multi_stack_single_comment(fixtures_dir):
    results = [load(fixtures_dir, "dev_db_volume_replace.json", label="dev"),
               load(fixtures_dir, "prod_k8s.json", label="prod", events="prod_events.ndjson"),
               load(fixtures_dir, "exp_prod_observed.json", label="examples/flow-masters")]
    body = pc.render_comment(results)
    assert_well_formed(body)
    top = header(body)
    assert "**⚠️ 5 stateful resources will be replaced or deleted" in top
    assert "in **dev**" in top and "in **prod**" in top
    positions = [body.index(f"### {name} — ") for name in ("dev", "prod", "examples/flow-masters")]
    assert positions == sorted(positions)


def test_deterministic_when_steps_and_events_are_shuffled(fixtures_dir, tmp_path):
    def render(seed):
        docs = []
        for name in ("dev_db_volume_replace.json", "prod_k8s.json", "exp_prod_observed.json"):
            doc = json.loads((fixtures_dir / name).read_text())
            random.Random(seed).shuffle(doc["steps"])
            doc["diagnostics"] = list(reversed(doc.get("diagnostics") or [])) if seed % 2 else doc.get("diagnostics")
            docs.append(doc)
        events, _ = pc.read_event_log((fixtures_dir / "prod_events.ndjson").read_text())
        random.Random(seed).shuffle(events)
        return pc.render_comment([pc.analyze_preview("dev", docs[0]),
                                  pc.analyze_preview("prod", docs[1], events),
                                  pc.analyze_preview("exp", docs[2])])
    first = render(0)
    assert all(render(seed) == first for seed in range(1, 8))
    # and the shuffles really produced different step orders
    doc = json.loads((fixtures_dir / "prod_k8s.json").read_text())
    orders = set()
    for seed in range(8):
        steps = list(doc["steps"])
        random.Random(seed).shuffle(steps)
        orders.add(tuple(s["urn"] for s in steps))
    assert len(orders) > 1


# --------------------------------------------------------------------------- size limits


def _huge_doc(maker, n, stack="prod", width=300):
    S, P = stack, "berth"
    root_u, root = maker.root_stack(S, P)
    prov = maker.default_provider(S, P, "kubernetes")
    steps = [root]
    for i in range(n):
        t = "kubernetes:apps/v1:Deployment" if i % 3 else "kubernetes:core/v1:ConfigMap"
        u = maker.urn(S, P, t, f"app-{i:05d}")
        old = maker.state(u, t, {"data": {"k": "x" * width, "n": i}}, {}, id_=f"ns/app-{i}", provider=prov)
        new = maker.state(u, t, {"data": {"k": "y" * width, "n": i + 1}}, {}, provider=prov)
        steps.append(maker.step("update", u, prov, old=old, new=new,
                                detailed={f"data.k{j}": ("update", True) for j in range(30)}))
    pvc = maker.urn(S, P, "kubernetes:core/v1:PersistentVolumeClaim", "zz-data")
    steps.append(maker.step("delete", pvc, prov, old=maker.state(pvc, "kubernetes:core/v1:PersistentVolumeClaim",
                                                                 {"spec": {}}, {}, id_="ns/zz-data")))
    doc = maker.digest({}, steps, [], 123, {"update": n, "delete": 1, "same": 1}, shuffle_seed=1)
    return json.loads(maker.go_indent(doc))


def test_huge_preview_stays_under_the_limit_and_valid(maker):
    r = pc.analyze_preview("prod", _huge_doc(maker, 3000))
    full = pc.assemble(pc.build_blocks([r]), budget=10**9)
    assert len(full.encode()) > 10 * LIMIT  # really is huge
    body = pc.render_comment([r])
    assert len(body.encode("utf-8")) <= LIMIT
    assert len(body) <= LIMIT
    assert_well_formed(body)
    assert "| 0 | 3000 | 0 | 1 | 1 |" in body
    # the flagged PVC keeps its details block; most others are dropped with a note
    assert "<b>zz-data</b> ⚠️ stateful</summary>" in body
    m = re.search(r"\*(\d+) resource detail blocks omitted to stay under GitHub's comment size limit", body)
    assert m and int(m.group(1)) > 2500
    kept = body.count("<details>")
    assert kept + int(m.group(1)) == 3001
    assert body.rstrip().endswith(("</details>", "*"))


def test_core_too_big_is_truncated_at_block_boundaries(maker):
    results = []
    for k in range(120):
        doc = {"steps": [], "diagnostics": [
            {"message": f"error: stack {k} failed: " + ("boom " * 600), "severity": "error"}], "changeSummary": {}}
        results.append(pc.analyze_preview(f"stack-{k:03d}", doc, exit_code=1))
    body = pc.render_comment(results)
    assert len(body.encode()) <= LIMIT
    assert_well_formed(body)
    assert "**Comment truncated:" in body
    assert body.rstrip().endswith("See the workflow artifacts for the full preview.")
    assert "### stack-000" in body and "### stack-119" not in body


def test_small_budget_still_valid(fixtures_dir):
    results = [load(fixtures_dir, "dev_db_volume_replace.json", label="dev"),
               load(fixtures_dir, "prod_k8s.json", label="prod", events="prod_events.ndjson")]
    for budget in (400, 1200, 2500, 4000, 8000):
        body = pc.render_comment(results, budget=budget)
        assert len(body.encode()) <= budget
        assert_well_formed(body)


# --------------------------------------------------------------------------- CLI


def test_cli_end_to_end(fixtures_dir, tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "berth", "preview-comment",
         "--stack", f"dev={fixtures_dir / 'failed_preview.json'}",
         "--stack", f"prod={fixtures_dir / 'prod_k8s.json'}:{fixtures_dir / 'prod_events.ndjson'}",
         "--exit-code", "dev=255", "--exit-code", "prod=0", "--title", "Preview for #7"],
        capture_output=True, text=True, cwd=str(pc.__file__).rsplit("/berth/", 1)[0], check=False,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(pc.MARKER + "\n## Preview for \\#7\n")
    assert "exit code 255" in out.stdout
    assert "pvc-backup-label" in out.stdout
    bad = subprocess.run([sys.executable, "-m", "berth", "preview-comment", "--stack", "no-equals-sign"],
                         capture_output=True, text=True, cwd=str(pc.__file__).rsplit("/berth/", 1)[0])
    assert bad.returncode == 2


# --------------------------------------------------------------------------- TLS identities


def test_tls_keys_and_certificates_replaced_or_deleted_are_flagged_in_bold_at_the_top(fixtures_dir):
    body = pc.render_comment([load(fixtures_dir, "prod_tls.json", label="prod")])
    top = header(body)
    assert ("**🔑 5 TLS keys or certificates will be replaced or deleted — "
            "a new key or certificate is a new identity:**") in top
    assert ("- **REPLACE** `tls:index/privateKey:PrivateKey` `internal-ca-key` in **prod** (TLS private key: a new key "
            "is a new identity, so clients pinning it or the certificate break) — because of `algorithm`") in top
    for line in (
        "- **REPLACE** `tls:index/selfSignedCert:SelfSignedCert` `internal-ca` in **prod** (self-signed TLS certificate: ",
        "- **REPLACE** `tls:index/certRequest:CertRequest` `billing-client` in **prod** (TLS certificate request: ",
        "- **DELETE** `tls:index/locallySignedCert:LocallySignedCert` `billing-client-old` in **prod** (TLS certificate: ",
        # a Kubernetes Secret of type kubernetes.io/tls, reasons only in detailedDiff
        "- **REPLACE** `kubernetes:core/v1:Secret` `web-tls` in **prod** (Kubernetes TLS Secret: a new key is a new "
        "identity, so clients pinning it or the certificate break) — because of `data[\"tls.crt\"]`, `data[\"tls.key\"]`",
    ):
        assert line in top
    # An Opaque Secret stays a stateful resource, listed first; a new key is not flagged.
    stateful, tls = top.split("**🔑", 1)
    assert "**⚠️ 1 stateful resource will be replaced or deleted" in stateful
    assert "`app-env` in **prod** (Kubernetes Secret) — because of `immutable`" in stateful
    assert "app-env" not in tls and "metrics-key" not in top
    assert "### prod — ⚠️ stateful changes, 🔑 TLS key or certificate changes" in body
    assert "<b>internal-ca-key</b> 🔑 TLS identity</summary>\n\n**🔑 TLS private key: a new key is a new identity" in body
    assert "<b>metrics-key</b></summary>" in body
    assert_well_formed(body)


@pytest.mark.parametrize(
    "chain, op, states, flag",
    [
        ("tls:index/privateKey:PrivateKey", "replace", {}, "tls"),
        ("tls:index/privateKey:PrivateKey", "delete", {}, "tls"),
        ("tls:index/selfSignedCert:SelfSignedCert", "replace", {}, "tls"),
        ("tls:index/locallySignedCert:LocallySignedCert", "replace", {}, "tls"),
        ("tls:index/certRequest:CertRequest", "delete", {}, "tls"),
        ("berth:index:Database$tls:index/privateKey:PrivateKey", "replace", {}, "tls"),
        ("tls:index/privateKey:PrivateKey", "update", {}, None),
        ("tls:index/selfSignedCert:SelfSignedCert", "create", {}, None),
        # the Secret's type is read from either state, inputs or outputs
        ("kubernetes:core/v1:Secret", "delete", {"oldState": {"inputs": {"type": "kubernetes.io/tls"}}}, "tls"),
        ("kubernetes:core/v1:Secret", "replace", {"newState": {"outputs": {"type": "kubernetes.io/tls"}}}, "tls"),
        ("kubernetes:core/v1:Secret", "replace", {"oldState": {"inputs": {"type": "Opaque"}}}, "stateful"),
        ("kubernetes:core/v1:Secret", "update", {"oldState": {"inputs": {"type": "kubernetes.io/tls"}}}, None),
        ("kubernetes:core/v1:ConfigMap", "delete", {"oldState": {"inputs": {"type": "kubernetes.io/tls"}}}, None),
    ],
)
def test_tls_classification(chain, op, states, flag):
    step = {"op": op, "urn": f"urn:pulumi:prod::berth::{chain}::thing", "detailedDiff": None, **states}
    r = pc.analyze_preview("prod", {"steps": [step], "changeSummary": {}})
    assert [c.flag for c in r.flagged] == ([flag] if flag else [])


def test_tls_only_preview():
    step = {"op": "delete", "urn": "urn:pulumi:prod::berth::tls:index/privateKey:PrivateKey::k", "detailedDiff": None}
    body = pc.render_comment([pc.analyze_preview("prod", {"steps": [step], "changeSummary": {}})])
    assert "**🔑 1 TLS key or certificate will be replaced or deleted" in header(body)
    assert "stateful resource will be" not in body
    assert "### prod — 🔑 TLS key or certificate changes" in body


# --------------------------------------------------------------------------- what real CLI outputs hold


def test_every_op_is_counted_and_shown(fixtures_dir):
    r = load(fixtures_dir, "dev_every_op.json", label="dev")
    # refresh counts as same; create-replacement + replace + delete-replaced of one URN are one replace
    assert r.counts == {"create": 0, "update": 1, "replace": 1, "delete": 0, "same": 2, "read": 1, "import": 1,
                        "read-replacement": 1, "discard-replaced": 1, "discard": 1, "remove-pending-replace": 1,
                        "frobnicate": 1}
    assert [(c.op, c.urn.name, c.reasons) for c in r.flagged] == [("replace", "uploads", ["driver"])]
    body = pc.render_comment([r])
    assert ("| Create | Update | Replace | Delete | Same | Discard | Discard-replaced | Frobnicate | Import | Read "
            "| Read-replacement | Remove-pending-replace |\n") in body
    assert "| 0 | 1 | 1 | 0 | 2 | 1 | 1 | 1 | 1 | 1 | 1 | 1 |\n" in body
    assert "<summary><code>?</code> frobnicate <code>docker:index/service:Service</code> <b>swarm-thing</b></summary>" in body
    assert "Operation: `frobnicate`" in body
    for op in ("read", "import", "discard", "read-replacement", "discard-replaced", "remove-pending-replace"):
        assert f"</code> {op} <code>" in body
    # an update step without newState, detailedDiff null, no diffReasons
    assert "<b>web</b></summary>\n\n*(the provider reported no property paths)*" in body
    # `info` diagnostics (program stdout) are not shown; the warning is
    assert "starting berth program" not in body and "<summary>1 warning</summary>" in body
    assert "### dev — ⚠️ stateful changes" in body
    assert_well_formed(body)


def test_event_log_fixture_has_every_kind_the_cli_writes(fixtures_dir):
    events, bad = pc.read_event_log((fixtures_dir / "dev_events_every_kind.ndjson").read_text())
    assert bad == 0
    kinds = {k for ev in events for k, v in ev.items() if k.endswith("Event") and v is not None}
    assert kinds == set(pc.KNOWN_EVENT_KINDS) | {"engineEvent", "futureEvent"}


def test_event_log_of_every_kind(fixtures_dir):
    r = load(fixtures_dir, "dev_every_op.json", label="dev", events="dev_events_every_kind.ndjson")
    assert r.unknown_events == {"(no event)": 2, "engineEvent": 1, "futureEvent": 2}
    assert [(v.level, v.policy) for v in r.violations] == [
        ("mandatory", "volume-backup-label"), ("remediate", "container-labels"), ("advisory", "container-healthcheck")]
    # cancelEvent ends every run, errorEvent and resOpFailedEvent are for debugging: none fails the stack
    assert not r.failed
    body = pc.render_comment([r])
    assert ("*The event log has 5 events of a kind this renderer does not read: "
            "`(no event)` ×2, `engineEvent` ×1, `futureEvent` ×2.*") in body
    assert "### dev — 🚫 blocked by policy" in body
    assert_well_formed(body)


def test_many_unknown_event_kinds_are_capped(tmp_path, fixtures_dir):
    log = tmp_path / "events.ndjson"
    log.write_text("".join(json.dumps({"sequence": i, "timestamp": 1, f"kind{i:02d}Event": {}}) + "\n" for i in range(11)))
    body = pc.render_comment([pc.load_stack("dev", str(fixtures_dir / "dev_changes.json"), str(log))])
    assert "11 events of a kind this renderer does not read: `kind00Event` ×1," in body
    assert "`kind07Event` ×1 and 3 more kinds.*" in body and "kind08Event" not in body


def test_event_log_diagnostics_when_there_is_no_document(tmp_path, fixtures_dir):
    empty = tmp_path / "preview.json"
    empty.write_text("{}\n")  # what the CLI prints when it fails before any event
    r = pc.load_stack("dev", str(empty), str(fixtures_dir / "dev_events_every_kind.ndjson"), 255)
    assert r.warnings == ["docker:index/container:Container web: warning: resource web has no healthcheck"]
    body = pc.render_comment([r])
    assert "reading state" not in body  # ephemeral debug message
    assert "No preview document was produced" in body


def test_streamed_json_preview_in_place_of_the_document(tmp_path, fixtures_dir):
    stream = fixtures_dir / "dev_events_every_kind.ndjson"
    r = pc.load_stack("dev", str(stream))
    assert r.failed
    assert r.problems[0].startswith("The preview output is an engine event stream (NDJSON)")
    assert len(r.violations) == 3 and len(r.warnings) == 1
    one = tmp_path / "one.json"
    one.write_text(stream.read_text().splitlines()[6] + "\n")  # a stream of one line parses as one object
    assert pc.load_stack("dev", str(one)).problems[0].startswith("The preview output is an engine event stream")
    body = pc.render_comment([r])
    assert "PULUMI\\_ENABLE\\_STREAMING\\_JSON\\_PREVIEW" in body


def test_output_json_format_in_place_of_the_document(tmp_path):
    out = tmp_path / "preview.json"
    out.write_text(json.dumps({"result": "succeeded", "duration": 1200, "summary": {"create": 1}, "resources": [
        {"urn": "urn:pulumi:dev::berth::docker:index/volume:Volume::v", "type": "docker:index/volume:Volume",
         "name": "v", "op": "create", "parent": ""}]}))
    r = pc.load_stack("dev", str(out))
    assert r.failed and len(r.problems) == 1 and "--output json, which has no diffs" in r.problems[0]


def test_unreadable_files_are_problems_not_crashes(tmp_path, fixtures_dir):
    binary = tmp_path / "preview.json"
    binary.write_bytes(b"\xff\xfe{\x00")
    r1 = pc.load_stack("dev", str(binary))
    r2 = pc.load_stack("prod", str(tmp_path), str(tmp_path))  # directories
    assert r1.problems == [f"Preview output {str(binary)!r} is not UTF-8 text."]
    assert r2.failed and len(r2.problems) == 2 and "could not be read" in r2.problems[1]
    assert_well_formed(pc.render_comment([r1, r2]))


URN_THING = "urn:pulumi:dev::berth::custom:index:Thing::t"


@pytest.mark.parametrize(
    "step",
    [
        {"op": None, "urn": None},
        {"op": 7, "urn": 7, "detailedDiff": None},
        {"op": "replace", "urn": {"not": "a string"}, "replaceReasons": "image", "diffReasons": None,
         "detailedDiff": ["x"]},
        {"op": "replace", "urn": URN_THING, "detailedDiff": {"a": None, "b": {"kind": None}},
         "diffReasons": [{"x": 1}, "b"]},
        {"op": "update", "urn": URN_THING, "oldState": None, "newState": None, "detailedDiff": {}},
        {"op": "create", "urn": URN_THING, "newState": {"inputs": ["not", "a", "map"]}},
        {"op": "create", "urn": URN_THING, "newState": "[secret]"},
        {"op": "delete", "urn": "urn:pulumi:dev::berth::docker:index/container:Container::c",
         "oldState": {"type": None, "inputs": {"image": None}}},
        {"op": "delete", "urn": "urn:pulumi:dev::berth::kubernetes:core/v1:Secret::s",
         "oldState": {"inputs": "[secret]", "outputs": None}},
    ],
)
def test_malformed_steps_and_diagnostics_never_crash(step):
    doc = {"steps": [step, "not a step", None],
           "diagnostics": [{"message": None, "severity": "error"}, {"severity": "warning", "message": "w", "urn": None},
                           "junk"],
           "changeSummary": None, "duration": True}
    r = pc.analyze_preview("dev", doc)
    body = pc.render_comment([r])
    assert_well_formed(body)
    assert "None" not in body
    assert "previewed in" not in body  # `true` is no duration
    assert r.warnings == ["w"] and r.errors == []


def test_an_unexpected_op_cannot_break_the_counts_table():
    doc = {"steps": [{"op": "x|y <b>", "urn": URN_THING, "detailedDiff": None}], "changeSummary": {}}
    body = pc.render_comment([pc.analyze_preview("dev", doc)])
    table = [line for line in body.splitlines() if line.startswith("|")]
    assert table[0].endswith("| X\\|y &lt;b&gt; |")
    assert len({len(re.findall(r"(?<!\\)\|", line)) for line in table}) == 1


def test_cli_help_names_the_files_it_reads_and_the_debug_setting():
    """`berth preview-comment --help` says what to give it: the stdout of `pulumi preview --json` and
    the event log of `--event-log`, which the CLI writes only with PULUMI_DEBUG_COMMANDS=true."""
    out = subprocess.run([sys.executable, "-m", "berth", "preview-comment", "--help"], capture_output=True, text=True,
                         cwd=str(pc.__file__).rsplit("/berth/", 1)[0], check=True).stdout
    flat = " ".join(out.split())
    for words in ["pulumi preview --json", "--event-log FILE", "PULUMI_DEBUG_COMMANDS=true", "policy",
                  "NAME=preview.json[:events.ndjson]"]:
        assert words in flat, words

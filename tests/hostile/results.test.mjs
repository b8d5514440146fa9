// results: attacks through what issue 14 added: upload names that climb out of inputs/ (once
// silently cut to their last component), and outputs made to be shown inline (?view=1) that
// would run as labbox's pages or send their data to another server from the viewer's browser.
// Walls: parse/names.c (input paths), api/outputs.c + nginx's view locations (headers).
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { attack, attackerStack, fs, getJSON, path, CSV } from "./hostile.mjs";

// A multipart body with the file names exactly as written (a browser would clean some).
async function rawUpload(stack, names) {
  const b = "----hostile" + Date.now();
  const parts = names.map((n) => `--${b}\r\nContent-Disposition: form-data; name="files"; filename="${n}"\r\n` +
    `Content-Type: text/csv\r\n\r\n${CSV}\r\n`);
  const res = await fetch(`${stack.url}/api/jobs`, {
    method: "POST", body: `${parts.join("")}--${b}--\r\n`, headers: { "content-type": `multipart/form-data; boundary=${b}` },
  });
  return { status: res.status, body: await res.json() };
}

describe("results", () => {
  let s;
  before(async () => {
    s = await attackerStack({});
  });
  after(async () => s?.stop());

  for (const name of ["../x.csv", "run1/../../job.json", "../../../../tmp/x.csv", "/etc/cron.d/x", "C:\\x\\..\\y.csv", "a/./../b.csv"]) {
    test(`upload named ${JSON.stringify(name)} is refused, not cut or resolved`, async () => {
      const r = await rawUpload(s, [name]);
      assert.equal(r.status, 400, JSON.stringify(r.body));
      assert.equal(r.body.code, "bad_filename");
      assert.deepEqual(fs.readdirSync(path.join(s.data, "tmp")), []);
      assert.deepEqual(fs.readdirSync(path.join(s.data, "jobs")).filter((n) => !/^[a-z2-7]{26}$/.test(n)), []);
    });
  }

  test("outputs made to turn on the viewer are shown sandboxed, or not as HTML at all", async () => {
    const { id, job } = await attack(s, { attack: "report" });
    assert.equal(job.state, "succeeded", JSON.stringify(job));
    const list = (await getJSON(s, `/api/jobs/${id}/outputs`)).body.outputs;
    const view = async (p) => fetch(`${s.url}${list.find((o) => o.path === p).url}?view=1`);
    for (const p of ["report.html", "chart.svg"]) {
      const res = await view(p);
      const csp = res.headers.get("content-security-policy");
      // No script, an opaque origin, nothing fetched from another server, no referrer.
      assert.match(csp, /^sandbox;/, p);
      assert.match(csp, /default-src 'none'/, p);
      assert.match(csp, /img-src 'self' data:;/, p);
      assert.doesNotMatch(csp, /allow-|script-src|http:|https:|\*/, p);
      assert.equal(res.headers.get("referrer-policy"), "no-referrer");
      assert.equal(res.headers.get("x-content-type-options"), "nosniff");
      await res.arrayBuffer();
    }
    // HTML named .pdf goes out typed as a PDF (never as HTML); HTML in a .txt as plain text.
    const pdf = await view("fake.pdf");
    assert.equal(pdf.headers.get("content-type"), "application/pdf");
    assert.equal(pdf.headers.get("x-content-type-options"), "nosniff");
    await pdf.arrayBuffer();
    const txt = await view("notes.txt");
    assert.equal(txt.headers.get("content-type"), "text/plain; charset=utf-8");
    assert.match(txt.headers.get("content-security-policy"), /^sandbox;/);
    await txt.arrayBuffer();
  });
});

// names: file names that display as something else (bidi controls, invisible characters) are
// refused for uploads and never collected as outputs (issue 9). Wall: parse/names.c.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { attack, attackerStack, fs, path, upload, CSV } from "./hostile.mjs";

describe("names", () => {
  let s;
  before(async () => {
    s = await attackerStack({});
  });
  after(async () => s?.stop());

  for (const name of ["uni-\u202Egnp.exe", "zero\u200Bwidth.csv", "\uFEFFbom.csv", "a\u2066b\u2069.csv", "ar\u061Cb.csv"]) {
    test(`upload named ${JSON.stringify(name)} is 400 bad_filename`, async () => {
      const r = await upload(s, [{ name, data: CSV }]);
      assert.equal(r.status, 400, JSON.stringify(r.body));
      assert.equal(r.body.code, "bad_filename");
      assert.deepEqual(fs.readdirSync(path.join(s.data, "tmp")), []);
    });
  }

  test("outputs with such names are not collected; the plain one is", async () => {
    const { job } = await attack(s, { attack: "bad-names" });
    assert.equal(job.state, "succeeded", JSON.stringify(job));
    assert.deepEqual(job.outputs.map((o) => o.path), ["plain.txt"]);
  });
});

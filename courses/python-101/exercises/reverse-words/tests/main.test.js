const test = require("node:test");
const assert = require("node:assert/strict");
const { reverseWords } = require("./main.js");

test("reverses the words", () => {
  assert.equal(reverseWords("one two three"), "three two one");
});

test("collapses extra spaces", () => {
  assert.equal(reverseWords("  a   b "), "b a");
});

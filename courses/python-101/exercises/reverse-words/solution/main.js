// Return the words of text in reverse order, separated by single spaces.
function reverseWords(text) {
  return text.split(/\s+/).filter(Boolean).reverse().join(" ");
}

module.exports = { reverseWords };

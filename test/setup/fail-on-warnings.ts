// Any process warning (deprecation, max listeners, …) fails the test that caused it.
process.on("warning", (warning) => {
  throw warning;
});

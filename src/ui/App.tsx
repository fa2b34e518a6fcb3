export function App() {
  return (
    <main>
      <h1>Slide Lab</h1>
      <p>End-to-end whole-slide training in the browser. The lab UI is being built.</p>
    </main>
  );
}

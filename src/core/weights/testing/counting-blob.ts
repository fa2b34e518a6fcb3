// A Blob that records every byte range read from it, for tests that a reader streams.

export class CountingBlob extends Blob {
  /** [begin, end) of each slice taken, and [0, size) for each whole-blob read */
  readonly ranges: [number, number][] = [];

  override slice(start = 0, end = this.size, contentType?: string): Blob {
    this.ranges.push([start, end]);
    return super.slice(start, end, contentType);
  }
  override arrayBuffer(): Promise<ArrayBuffer> {
    this.ranges.push([0, this.size]);
    return super.arrayBuffer();
  }
  override stream(): ReturnType<Blob['stream']> {
    this.ranges.push([0, this.size]);
    return super.stream();
  }
  override text(): Promise<string> {
    this.ranges.push([0, this.size]);
    return super.text();
  }
  /** Total bytes read so far. */
  get bytesRead(): number {
    return this.ranges.reduce((sum, [a, b]) => sum + (b - a), 0);
  }
}

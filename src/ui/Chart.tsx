// A uPlot chart that follows its data: created once per set of options, fed with setData.
import { useEffect, useRef } from 'react';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';

export interface ChartProps {
  title: string;
  /** Column-oriented data: x first, then one array per series. */
  data: uPlot.AlignedData;
  series: uPlot.Series[];
  axes?: uPlot.Axis[];
  scales?: uPlot.Scales;
  bands?: uPlot.Band[];
  height?: number;
  testId: string;
}

export function Chart({ title, data, series, axes, scales, bands, height = 220, testId }: ChartProps) {
  const host = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const key = JSON.stringify({ title, series: series.map((s) => s.label), scales, bands, n: series.length });

  useEffect(() => {
    const el = host.current!;
    const width = Math.max(280, el.clientWidth || 480);
    plot.current = new uPlot({ title, width, height, series, axes, scales: { x: { time: false }, ...scales }, bands, legend: { live: false } }, data, el);
    const ro = new ResizeObserver(() => plot.current?.setSize({ width: Math.max(280, el.clientWidth), height }));
    ro.observe(el);
    return () => {
      ro.disconnect();
      plot.current?.destroy();
      plot.current = null;
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [key, height]);

  useEffect(() => {
    plot.current?.setData(data);
  }, [data]);

  const points = data.length > 1 ? (data[0] as ArrayLike<number>).length : 0;
  return <div className="chart" ref={host} data-testid={testId} data-points={points} />;
}

// A workflow definition drawn as a graph: React Flow draws, dagre lays it out top to
// bottom (definitions carry no positions, so every view is laid out afresh).
import { Graph as DagreGraph, layout } from "@dagrejs/dagre";
import { Background, Controls, Handle, Position, ReactFlow, useReactFlow, useStore } from "@xyflow/react";
import "@xyflow/react/dist/style.css";
import { useEffect, useMemo } from "react";

const WIDTH = 200;
const HEIGHT = 72;

export function laidOut(definition) {
  const g = new DagreGraph();
  g.setGraph({ rankdir: "TB", nodesep: 30, ranksep: 50 });
  g.setDefaultEdgeLabel(() => ({}));
  for (const node of definition.nodes) g.setNode(node.id, { width: WIDTH, height: HEIGHT });
  for (const edge of definition.edges) {
    if (g.hasNode(edge.from) && g.hasNode(edge.to)) g.setEdge(edge.from, edge.to);
  }
  layout(g);
  const positions = {};
  for (const id of g.nodes()) {
    const { x, y } = g.node(id);
    positions[id] = { x: x - WIDTH / 2, y: y - HEIGHT / 2 };
  }
  return positions;
}

function StepNode({ data }) {
  const classes = ["step", data.status, data.problems.length ? "has-problem" : "", data.selected ? "selected" : ""];
  return (
    <div className={classes.join(" ")} data-node-id={data.id}>
      <Handle type="target" position={Position.Top} />
      <strong>{data.id}</strong>
      <span className="type">{data.type}</span>
      {data.status && <span className="status">{data.status}</span>}
      {data.problems.map((p, i) => (
        <span key={i} className="problem" role="note">⚠ {p}</span>
      ))}
      <Handle type="source" position={Position.Bottom} />
    </div>
  );
}

const nodeTypes = { step: StepNode };

/** Fits the graph again when its box changes size (a phone turned, a panel opened) or
 *  nodes come and go: React Flow's `fitView` fits only the first drawing. */
function FitOnResize({ count }) {
  const { fitView } = useReactFlow();
  const width = useStore((s) => s.width);
  const height = useStore((s) => s.height);
  useEffect(() => {
    fitView({ maxZoom: 1 });
  }, [width, height, count]);
  return null;
}

/**
 * `definition`: {nodes, edges}. `statuses`: node id -> status (an execution's view).
 * `problems`: node id -> [message]. `onSelect(id)`, `onConnect(from, to)` when editing.
 */
export default function WorkflowGraph({ definition, statuses = {}, problems = {}, selected, onSelect, onConnect, label }) {
  const positions = useMemo(() => laidOut(definition), [definition]);
  const nodes = definition.nodes.map((n) => ({
    id: n.id,
    type: "step",
    position: positions[n.id] || { x: 0, y: 0 },
    data: {
      id: n.id,
      type: n.type,
      status: statuses[n.id],
      problems: problems[n.id] || [],
      selected: n.id === selected,
    },
    ariaLabel: `Node ${n.id}, ${n.type}${statuses[n.id] ? `, ${statuses[n.id]}` : ""}`,
  }));
  const edges = definition.edges.map((e, i) => ({
    id: `e${i}-${e.from}-${e.to}`,
    source: e.from,
    target: e.to,
    label: e.branch,
    ariaLabel: `Edge from ${e.from} to ${e.to}${e.branch ? ` on ${e.branch}` : ""}`,
  }));
  return (
    <div className="graph" role="group" aria-label={label || "Workflow graph"}>
      <ReactFlow
        nodes={nodes}
        edges={edges}
        nodeTypes={nodeTypes}
        fitView
        fitViewOptions={{ maxZoom: 1 }}
        nodesDraggable={false}
        nodesConnectable={Boolean(onConnect)}
        elementsSelectable={Boolean(onSelect)}
        onNodeClick={onSelect ? (_, node) => onSelect(node.id) : undefined}
        onConnect={onConnect ? (c) => onConnect(c.source, c.target) : undefined}
        proOptions={{ hideAttribution: true }}
        minZoom={0.2}
      >
        <FitOnResize count={nodes.length} />
        <Background />
        <Controls showInteractive={false} />
      </ReactFlow>
    </div>
  );
}

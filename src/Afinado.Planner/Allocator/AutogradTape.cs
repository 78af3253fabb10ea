namespace Afinado.Planner.Allocator;

/// <summary>A parameter as the optimizer and autograd see it: elements, bytes per element of the parameter (and of its
/// gradient and AdamW state), whether it trains.</summary>
internal sealed class Param(long elements, int bytes, bool trainable, long storageBytes, bool quantized)
{
    public long Elements { get; } = elements;
    /// <summary>Bytes per element of the trainable parameter, its gradient and its optimizer state.</summary>
    public int Bytes { get; } = bytes;
    public bool Trainable { get; } = trainable;
    /// <summary>Bytes the stored weight takes (packed for quantized frozen linears).</summary>
    public long StorageBytes { get; } = storageBytes;
    /// <summary>A frozen quantized linear: dequantized per matmul.</summary>
    public bool Quantized { get; } = quantized;
    /// <summary>The tensor in <c>.grad</c> (-1: None).</summary>
    public int Grad { get; set; } = -1;
    public int ExpAvg { get; set; } = -1;
    public int ExpAvgSq { get; set; } = -1;
    /// <summary>Recorded uses whose gradient backward has not yet reached: the gradient is complete at zero (autograd
    /// sums a leaf's uses in its AccumulateGrad node's input buffer and runs the node once).</summary>
    public int PendingGrads { get; set; }
    public long Nbytes => Elements * Bytes;
}

/// <summary>A weight's gradient as a backward node produces it: computed in <see cref="ComputeBytes"/> per element (the
/// 16-bit autocast copy's dtype under AMP) and stored in the parameter's dtype (ToCopyBackward casts it).</summary>
internal readonly record struct WeightGrad(Param Param, int ComputeBytes);

/// <summary>
/// Just enough of PyTorch autograd to know when each tensor is allocated and freed: reference counts (a tensor lives
/// while the forward code or a backward node that saved it holds it), nodes recorded in forward order, and a backward
/// that runs them in reverse, allocating input and weight gradients before releasing the node's saved tensors and its
/// incoming gradient (torch/csrc/autograd/engine.cpp: <c>call_function</c>, then <c>release_variables</c> when
/// retain_graph is false). Gradients reaching one tensor from two uses are summed in place (InputBuffer::accumulate);
/// a weight's first gradient is stolen into <c>.grad</c>, later ones are added in place (AccumulateGrad).
/// </summary>
internal sealed class AutogradTape(AllocationTrace trace)
{
    /// <summary>A recorded backward node. Its inputs, saved tensors, weights and backward temporaries sit in the tape's
    /// shared stacks (<see cref="_ints"/>, <see cref="_weights"/>, <see cref="_temporaries"/>): nodes are recorded in order
    /// and run from the last, so their lists come and go last-in first-out, and a step's nodes (5,558 for the 8B LoRA
    /// step) allocate nothing (as objects with four arrays each they were most of a trace's megabyte of garbage).</summary>
    private struct Node
    {
        public int Output;
        /// <summary>A chunk node (<see cref="Chunk2"/>): the second view it made (the first is <see cref="Output"/>); else -1.</summary>
        public int SecondOutput;
        public int InputsStart, InputCount, SavedCount, WeightsStart, WeightCount, TemporariesStart, TemporaryCount;
        public Func<int, int>? Recompute;
        /// <summary>An in-place add (<see cref="AddInPlace"/>): the incoming gradient goes through to the inputs unchanged.</summary>
        public bool PassThrough;
        /// <summary>For a pass-through node: the output had a producer before the add, which the gradient goes on to.</summary>
        public bool OutputHadGrad;
        /// <summary>For a pass-through node: the addend's gradient is a new tensor (index_add_'s index_select), not the same one.</summary>
        public bool InputGradientIsNew;
        /// <summary>For a pass-through node: the gradient goes on to the target's producer as a new tensor (an in-place
        /// multiply's grad · other), not the same one.</summary>
        public bool OutputGradientIsNew;
        public readonly int SavedStart => InputsStart + InputCount;
    }

    private readonly AllocationTrace _trace = trace;
    // Indexed by tensor id (ids are dense, in allocation order): reference count, needs-grad flag, pending gradient (-1: none).
    private readonly List<int> _refs = new(4096);
    private readonly List<bool> _requiresGrad = new(4096);
    private Node[] _nodes = new Node[1024];
    private int _nodeCount;
    // The nodes' lists, as stacks: inputs then saved tensors (one run per node), weights, backward temporaries.
    private int[] _ints = new int[4096];
    private int _intCount;
    private WeightGrad[] _weights = new WeightGrad[1024];
    private int _weightCount;
    private long[] _temporaries = new long[256];
    private int _temporaryCount;
    // A node's backward temporaries while they live (they are freed before the next node runs).
    private int[] _liveTemporaries = new int[16];
    private readonly List<int> _grads = new(4096);
    // Per id, the tensor a view keeps alive (-1: not a view).
    private readonly List<int> _viewBase = new(4096);

    /// <summary>False under no_grad / inference_mode and inside a checkpointed forward: nothing is saved, no node recorded.</summary>
    public bool Recording { get; set; } = true;

    /// <summary>
    /// Runs when a trainable parameter's gradient is complete in <c>.grad</c>: a post-accumulate-grad hook. torchtune's
    /// optimizer_in_bwd registers one per parameter that steps the parameter's own optimizer and calls its
    /// <c>zero_grad()</c> (torchtune/training/memory.py, <c>register_optim_in_bwd_hooks</c>). AccumulateGrad nodes carry
    /// the largest sequence number, so the engine runs one as soon as its input is ready: the hook fires there, before
    /// the rest of the backward.
    /// </summary>
    public Action<Param>? GradReady { get; set; }

    public AllocationTrace Trace => _trace;

    /// <summary>Forgets every tensor and node (with the trace's <see cref="AllocationTrace.Clear"/>), keeping the buffers.</summary>
    public void Clear()
    {
        _trace.Clear();
        _refs.Clear();
        _requiresGrad.Clear();
        Array.Clear(_nodes, 0, _nodeCount); // nodes no backward ran: drops their recompute closures
        _nodeCount = _intCount = _weightCount = _temporaryCount = 0;
        _grads.Clear();
        _viewBase.Clear();
        Recording = true;
        GradReady = null;
    }

    public int New(long bytes, int stream = 0)
    {
        int id = _trace.Allocate(bytes, stream);
        Track(id);
        return id;
    }

    /// <summary>Indexes for a new id (the trace may hold tensors the tape did not create, runtime workspaces: keep the
    /// indexes aligned with its ids).</summary>
    private void Track(int id)
    {
        while (_refs.Count <= id)
        {
            _refs.Add(0);
            _requiresGrad.Add(false);
            _grads.Add(-1);
            _viewBase.Add(-1);
        }
        _refs[id] = 1;
    }

    /// <summary>
    /// <c>a, b = source.chunk(2, dim=-1)</c>: two views of <paramref name="halfBytes"/> each that keep the source alive. Their
    /// gradients are half-sized; SplitBackward, once both have arrived, concatenates them into one gradient of the source's
    /// size and releases them (autograd's single node with two outputs).
    /// </summary>
    public (int A, int B) Chunk2(int source, long halfBytes)
    {
        int a = View(source, halfBytes), b = View(source, halfBytes);
        if (Recording && _requiresGrad[source])
        {
            _requiresGrad[a] = _requiresGrad[b] = true;
            ref var node = ref Push(a);
            node.SecondOutput = b;
            PushInput(ref node, source);
        }
        return (a, b);
    }

    private int View(int source, long bytes)
    {
        int id = _trace.View(bytes);
        Track(id);
        _viewBase[id] = source;
        _refs[source]++;
        return id;
    }

    public long Bytes(int t) => _trace.BytesOf(t);

    /// <summary>Another holder of <paramref name="t"/> (an alias in forward code, a cache).</summary>
    public int Hold(int t)
    {
        _refs[t]++;
        return t;
    }

    public void Drop(int t)
    {
        if (--_refs[t] != 0) return;
        _trace.Free(t);
        if (_viewBase[t] >= 0) Drop(_viewBase[t]);
    }

    public void Drop(params ReadOnlySpan<int> ts)
    {
        foreach (int t in ts) Drop(t);
    }

    public bool RequiresGrad(int t) => _requiresGrad[t];

    /// <summary>Records that <paramref name="output"/> was computed from <paramref name="inputs"/> (and weights): when
    /// recording and something needs a gradient, a node saves <paramref name="saved"/> until backward reaches it.
    /// <paramref name="backwardTemporaries"/> are workspaces the node's backward allocates and frees.</summary>
    public void Op(int output, ReadOnlySpan<int> inputs, ReadOnlySpan<int> saved = default, ReadOnlySpan<WeightGrad> weights = default,
        ReadOnlySpan<long> backwardTemporaries = default)
    {
        if (!Recording) return;
        // Counted first so that ops nothing differentiates through (most of a frozen model) allocate no node.
        int gradInputs = 0, trainable = 0;
        foreach (int i in inputs)
            if (_requiresGrad[i]) gradInputs++;
        foreach (var w in weights)
            if (w.Param.Trainable) trainable++;
        if (gradInputs == 0 && trainable == 0) return;
        ref var node = ref Push(output);
        foreach (int i in inputs)
            if (_requiresGrad[i]) PushInput(ref node, i);
        _requiresGrad[output] = true;
        PushSaved(ref node, saved);
        foreach (var w in weights)
            if (w.Param.Trainable)
            {
                if (_weightCount == _weights.Length) Array.Resize(ref _weights, _weightCount * 2);
                _weights[_weightCount++] = w;
                node.WeightCount++;
                w.Param.PendingGrads++;
            }
        foreach (long bytes in backwardTemporaries)
        {
            if (_temporaryCount == _temporaries.Length) Array.Resize(ref _temporaries, _temporaryCount * 2);
            _temporaries[_temporaryCount++] = bytes;
            node.TemporaryCount++;
        }
    }

    /// <summary>A new node for <paramref name="output"/> on top of the stack, its lists empty at the top of theirs.</summary>
    private ref Node Push(int output)
    {
        if (_nodeCount == _nodes.Length) Array.Resize(ref _nodes, _nodeCount * 2);
        ref var node = ref _nodes[_nodeCount++];
        node = new Node
        {
            Output = output, SecondOutput = -1, InputsStart = _intCount, WeightsStart = _weightCount, TemporariesStart = _temporaryCount,
        };
        return ref node;
    }

    /// <summary>Adds an input to the newest node (before any saved tensor: the two share one run).</summary>
    private void PushInput(ref Node node, int input)
    {
        if (_intCount == _ints.Length) Array.Resize(ref _ints, _intCount * 2);
        _ints[_intCount++] = input;
        node.InputCount++;
    }

    /// <summary>The newest node keeps <paramref name="saved"/> (one more holder each) until backward reaches it.</summary>
    private void PushSaved(ref Node node, ReadOnlySpan<int> saved)
    {
        foreach (int t in saved)
        {
            if (_intCount == _ints.Length) Array.Resize(ref _ints, _intCount * 2);
            _ints[_intCount++] = t;
            _refs[t]++;
            node.SavedCount++;
        }
    }

    /// <summary>Non-reentrant activation checkpointing: the block ran without saving; backward re-runs
    /// <paramref name="recompute"/> on the saved <paramref name="input"/> (recording), then back-propagates through it.</summary>
    public void Checkpoint(int output, int input, Func<int, int> recompute, bool anyTrainable)
    {
        if (!_requiresGrad[input] && !anyTrainable) return;
        _requiresGrad[output] = true;
        ref var node = ref Push(output);
        node.Recompute = recompute;
        if (_requiresGrad[input]) PushInput(ref node, input);
        PushSaved(ref node, [input]);
    }

    /// <summary>In-place <c>target += addend</c>: no new tensor. AddBackward hands the incoming gradient through
    /// unchanged (the same tensor to the addend and on to whatever produced the target), so its backward allocates nothing.</summary>
    public void AddInPlace(int target, int addend) => RecordInPlace(target, addend, [], newInputGradient: false);

    /// <summary>In-place <c>target.index_add_(dim, index, source)</c>: the target's gradient passes through; the source's is
    /// <c>grad.index_select(dim, index)</c>, a new tensor (derivatives.yaml). Keeps <paramref name="saved"/> until backward.</summary>
    public void IndexAddInPlace(int target, int source, ReadOnlySpan<int> saved) => RecordInPlace(target, source, saved, newInputGradient: true);

    /// <summary>In-place <c>target *= factor</c> where the factor needs no gradient: no new tensor; MulBackward keeps
    /// <paramref name="factor"/> and hands the target's producer a new gradient, grad · factor.</summary>
    public void ScaleInPlace(int target, int factor)
    {
        if (!Recording || !_requiresGrad[target]) return;
        ref var node = ref Push(target);
        node.PassThrough = node.OutputHadGrad = node.OutputGradientIsNew = true;
        PushSaved(ref node, [factor]);
    }

    /// <summary>A node for an in-place op on <paramref name="target"/> whose gradient passes through to what produced the
    /// target; <paramref name="input"/> gets the same gradient or, with <paramref name="newInputGradient"/>, a new one.</summary>
    private void RecordInPlace(int target, int input, ReadOnlySpan<int> saved, bool newInputGradient)
    {
        if (!Recording || !(_requiresGrad[target] || _requiresGrad[input])) return;
        bool hadGrad = _requiresGrad[target];
        _requiresGrad[target] = true;
        ref var node = ref Push(target);
        node.PassThrough = true;
        node.OutputHadGrad = hadGrad;
        node.InputGradientIsNew = newInputGradient;
        if (_requiresGrad[input]) PushInput(ref node, input);
        PushSaved(ref node, saved);
    }

    /// <summary>Marks a leaf input (e.g. embedding output of a trainable table) as needing a gradient.</summary>
    public void MarkRequiresGrad(int t) => _requiresGrad[t] = true;

    /// <summary><c>loss.backward()</c>: seeds the loss gradient and runs every recorded node in reverse.</summary>
    public void Backward(int loss)
    {
        int seed = New(Bytes(loss));
        _grads[loss] = seed;
        RunBackward(0);
    }

    private void RunBackward(int first)
    {
        for (int n = _nodeCount - 1; n >= first; n--)
        {
            var node = _nodes[n];
            _nodes[n].Recompute = null;
            _nodeCount = n;
            RunNode(node);
            // The node was the newest: its lists are the tops of the stacks (a recompute's nodes above them are gone).
            _intCount = node.InputsStart;
            _weightCount = node.WeightsStart;
            _temporaryCount = node.TemporariesStart;
        }
    }

    private void RunNode(in Node node)
    {
        var inputs = _ints.AsSpan(node.InputsStart, node.InputCount);
        if (node.SecondOutput >= 0)
        {
            // SplitBackward: one source-sized gradient from the two halves (a missing half counts as zeros).
            int firstHalf = _grads[node.Output], secondHalf = _grads[node.SecondOutput];
            _grads[node.Output] = _grads[node.SecondOutput] = -1;
            if (firstHalf < 0 && secondHalf < 0) return;
            foreach (int i in inputs) Accumulate(i, New(Bytes(i)));
            if (firstHalf >= 0) Drop(firstHalf);
            if (secondHalf >= 0) Drop(secondHalf);
            return;
        }
        int gradOut = _grads[node.Output];
        _grads[node.Output] = -1;
        if (gradOut < 0)
        {
            // The output never received a gradient (it did not reach the loss): the node is dropped with its graph,
            // and its weights' gradients are complete without it.
            DropSaved(node);
            foreach (var w in _weights.AsSpan(node.WeightsStart, node.WeightCount)) Completed(w.Param);
            return;
        }
        if (node.PassThrough)
        {
            foreach (int i in inputs) Accumulate(i, node.InputGradientIsNew ? New(Bytes(i)) : Hold(gradOut));
            int onward = node.OutputHadGrad && node.OutputGradientIsNew ? New(Bytes(node.Output)) : -1;
            DropSaved(node);
            if (onward >= 0) { Drop(gradOut); _grads[node.Output] = onward; }
            else if (node.OutputHadGrad) _grads[node.Output] = gradOut;
            else Drop(gradOut);
            return;
        }
        if (node.Recompute is { } recompute)
        {
            int start = _nodeCount;
            bool was = Recording;
            Recording = true;
            int again = recompute(node.InputCount > 0 ? inputs[0] : _ints[node.SavedStart]);
            Recording = was;
            _grads[again] = gradOut;
            RunBackward(start);
            Drop(again);
            DropSaved(node);
            return;
        }
        foreach (int i in inputs) Accumulate(i, New(Bytes(i)));
        foreach (var w in _weights.AsSpan(node.WeightsStart, node.WeightCount)) AccumulateWeight(w);
        if (node.TemporaryCount > _liveTemporaries.Length) Array.Resize(ref _liveTemporaries, node.TemporaryCount);
        var temps = _liveTemporaries.AsSpan(0, node.TemporaryCount);
        for (int k = 0; k < temps.Length; k++) temps[k] = New(_temporaries[node.TemporariesStart + k]);
        foreach (int t in temps) Drop(t);
        DropSaved(node);
        Drop(gradOut);
    }

    private void DropSaved(in Node node)
    {
        for (int k = node.SavedStart; k < node.SavedStart + node.SavedCount; k++) Drop(_ints[k]);
    }

    private void Accumulate(int tensor, int grad)
    {
        if (_grads[tensor] >= 0) Drop(grad);
        else _grads[tensor] = grad;
    }

    private void AccumulateWeight(WeightGrad w)
    {
        var p = w.Param;
        int g = New(p.Elements * w.ComputeBytes);
        if (w.ComputeBytes != p.Bytes)
        {
            int cast = New(p.Nbytes);
            Drop(g);
            g = cast;
        }
        if (p.Grad < 0) p.Grad = g;
        else Drop(g);
        Completed(p);
    }

    private void Completed(Param p)
    {
        if (--p.PendingGrads == 0 && p.Grad >= 0) GradReady?.Invoke(p);
    }
}

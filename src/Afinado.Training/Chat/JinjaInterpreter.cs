using System.Globalization;
using System.Text;

namespace Afinado.Training.Chat;

/// <summary>
/// Walks a parsed template with Jinja2's runtime semantics as transformers configures it (an immutable sandbox: no
/// method changes a list or dict; <c>raise_exception</c>, <c>strftime_now</c> and a <c>tojson</c> that calls
/// json.dumps with ensure_ascii=False). Scopes follow Jinja2: each loop iteration sees a fresh scope over the enclosing
/// one, so <c>{% set %}</c> inside a loop does not outlive the iteration; <c>namespace()</c> attributes do.
/// </summary>
internal sealed class JinjaInterpreter
{
    private enum Flow { Normal, Break, Continue }

    private sealed class Scope
    {
        private readonly Dictionary<string, object?> _vars = new(StringComparer.Ordinal);

        public Scope(Scope? parent) => Parent = parent;

        public Scope? Parent { get; }

        public bool TryGet(string name, out object? value)
        {
            for (var s = this; s is not null; s = s.Parent)
                if (s._vars.TryGetValue(name, out value)) return true;
            value = null;
            return false;
        }

        public void Set(string name, object? value) => _vars[name] = value;
    }

    private readonly StringBuilder _out = new();
    private readonly Func<DateTime> _now;
    private int _depth;

    private JinjaInterpreter(Func<DateTime> now) => _now = now;

    public static string Render(List<Stmt> template, IReadOnlyDictionary<string, object?> variables, Func<DateTime> now)
    {
        var interpreter = new JinjaInterpreter(now);
        var globals = new Scope(null);
        foreach (var (name, fn) in interpreter.Globals()) globals.Set(name, fn);
        var root = new Scope(globals);
        foreach (var (k, v) in variables) root.Set(k, v);
        interpreter.Execute(template, root);
        return interpreter._out.ToString();
    }

    private IEnumerable<(string, Callable)> Globals()
    {
        yield return ("raise_exception", new Callable("raise_exception", (args, _) =>
            throw new TemplateRuntimeError(args.Count > 0 ? Py.Str(args[0]) : "raise_exception() called", raisedByTemplate: true)));
        yield return ("namespace", new Callable("namespace", (args, kwargs) =>
        {
            var ns = new Namespace();
            foreach (var a in args)
            {
                if (a is not OrderedDictionary<string, object?> d) throw new TemplateRuntimeError($"namespace() takes a dict or keyword arguments, not {Py.TypeName(a)}");
                foreach (var (k, v) in d) ns.Attributes[k] = v;
            }
            foreach (var (k, v) in kwargs) ns.Attributes[k] = v;
            return ns;
        }));
        yield return ("range", new Callable("range", (args, _) => Range(args)));
        yield return ("dict", new Callable("dict", (args, kwargs) =>
        {
            var d = new OrderedDictionary<string, object?>(StringComparer.Ordinal);
            foreach (var a in args)
                if (a is OrderedDictionary<string, object?> src) foreach (var (k, v) in src) d[k] = v;
                else throw new TemplateRuntimeError($"dict() takes a dict or keyword arguments, not {Py.TypeName(a)}");
            foreach (var (k, v) in kwargs) d[k] = v;
            return d;
        }));
        yield return ("strftime_now", new Callable("strftime_now", (args, _) =>
            args.Count == 1 && args[0] is string f ? Strftime(_now(), f) : throw new TemplateRuntimeError("strftime_now() takes one format string")));
    }

    // ---------------------------------------------------------------- statements

    private Flow Execute(List<Stmt> body, Scope scope)
    {
        foreach (var stmt in body)
        {
            var flow = Execute(stmt, scope);
            if (flow != Flow.Normal) return flow;
        }
        return Flow.Normal;
    }

    private Flow Execute(Stmt stmt, Scope scope)
    {
        try
        {
            switch (stmt)
            {
                case TextStmt t:
                    Write(t.Text);
                    return Flow.Normal;
                case OutputStmt o:
                    Write(Py.Str(Eval(o.Value, scope)));
                    return Flow.Normal;
                case IfStmt i:
                    foreach (var (test, body) in i.Branches)
                        if (Py.Truthy(Eval(test, scope))) return Execute(body, scope);
                    return i.Else is null ? Flow.Normal : Execute(i.Else, scope);
                case ForStmt f:
                    ExecuteFor(f, scope);
                    return Flow.Normal;
                case SetStmt s:
                    Assign(s.Target, Eval(s.Value, scope), scope);
                    return Flow.Normal;
                case SetBlockStmt sb:
                    int mark = _out.Length;
                    Execute(sb.Body, scope);
                    string captured = _out.ToString(mark, _out.Length - mark);
                    _out.Length = mark;
                    Assign(sb.Target, captured, scope);
                    return Flow.Normal;
                case GenerationStmt g:
                    return Execute(g.Body, scope);
                case BreakStmt:
                    return Flow.Break;
                case ContinueStmt:
                    return Flow.Continue;
                default:
                    throw new TemplateRuntimeError($"unknown statement {stmt.GetType().Name}");
            }
        }
        catch (TemplateRuntimeError e) when (e.Line == 0)
        {
            e.Line = stmt.Line;
            throw;
        }
    }

    private void Write(string s)
    {
        if (_out.Length + s.Length > JinjaLimits.MaxOutput)
            throw new TemplateRuntimeError($"the rendering grew past {JinjaLimits.MaxOutput:N0} characters");
        _out.Append(s);
    }

    private void ExecuteFor(ForStmt f, Scope scope)
    {
        var items = Iterate(Eval(f.Iterable, scope));
        if (f.Filter is not null)
        {
            // Jinja2 filters first, so loop.length, loop.last and loop.index count only the kept items.
            var kept = new List<object?>();
            foreach (var item in items)
            {
                var probe = new Scope(scope);
                Assign(f.Target, item, probe);
                if (Py.Truthy(Eval(f.Filter, probe))) kept.Add(item);
            }
            items = kept;
        }
        var loop = new LoopContext(items);
        for (int i = 0; i < items.Count; i++)
        {
            loop.Index0 = i;
            var inner = new Scope(scope);
            inner.Set("loop", loop);
            Assign(f.Target, items[i], inner);
            if (Execute(f.Body, inner) == Flow.Break) break;
        }
        if (items.Count == 0 && f.Else is not null) Execute(f.Else, scope);
    }

    private void Assign(Target target, object? value, Scope scope)
    {
        switch (target)
        {
            case NameTarget n:
                scope.Set(n.Name, value);
                break;
            case AttributeTarget a:
                if (!scope.TryGet(a.Object, out var obj) || obj is not Namespace ns)
                    throw new TemplateRuntimeError($"cannot assign attribute on non-namespace object '{a.Object}'", a.Line);
                ns.Attributes[a.Attribute] = value;
                break;
            case TupleTarget t:
                var items = Iterate(value);
                if (items.Count != t.Items.Count)
                    throw new TemplateRuntimeError($"cannot unpack {items.Count} values into {t.Items.Count} names", t.Line);
                for (int i = 0; i < items.Count; i++) Assign(t.Items[i], items[i], scope);
                break;
        }
    }

    // ---------------------------------------------------------------- expressions

    private object? Eval(Expr expr, Scope scope)
    {
        if (++_depth > JinjaLimits.MaxDepth) throw new TemplateRuntimeError("expression nested too deeply", expr.Line);
        try { return EvalCore(expr, scope); }
        catch (TemplateRuntimeError e) when (e.Line == 0)
        {
            e.Line = expr.Line;
            throw;
        }
        finally { _depth--; }
    }

    private object? EvalCore(Expr expr, Scope scope)
    {
        switch (expr)
        {
            case LiteralExpr l: return l.Value;
            case NameExpr n: return scope.TryGet(n.Name, out var v) ? v : new Undefined($"'{n.Name}' is undefined");
            case ListExpr l:
                var list = new List<object?>(l.Items.Count);
                foreach (var item in l.Items) list.Add(Eval(item, scope));
                return l.IsTuple ? new PyTuple(list) : list;
            case DictExpr d:
                var dict = new OrderedDictionary<string, object?>(StringComparer.Ordinal);
                foreach (var (k, value) in d.Items)
                {
                    var key = Eval(k, scope);
                    if (key is not string s) throw new TemplateRuntimeError($"dict keys must be strings here, not {Py.TypeName(key)}");
                    dict[s] = Eval(value, scope);
                }
                return dict;
            case AttributeExpr a: return GetAttribute(Eval(a.Object, scope), a.Name);
            case ItemExpr i: return GetItem(Eval(i.Object, scope), Eval(i.Index, scope));
            case SliceExpr s:
                return Slice(Eval(s.Object, scope), s.Start is null ? null : Eval(s.Start, scope),
                    s.Stop is null ? null : Eval(s.Stop, scope), s.Step is null ? null : Eval(s.Step, scope));
            case CallExpr c:
                var callee = Eval(c.Callee, scope);
                var (args, kwargs) = Arguments(c.Args, c.Kwargs, scope);
                return callee switch
                {
                    Callable fn => fn.Call(args, kwargs),
                    Undefined u => throw new TemplateRuntimeError(u.Hint),
                    _ => throw new TemplateRuntimeError($"'{Py.TypeName(callee)}' object is not callable"),
                };
            case FilterExpr f:
                var operand = Eval(f.Operand, scope);
                var (fargs, fkwargs) = Arguments(f.Args, f.Kwargs, scope);
                return Filter(f.Name, operand, fargs, fkwargs);
            case TestExpr t:
                var tested = Eval(t.Operand, scope);
                var targs = new List<object?>(t.Args.Count);
                foreach (var a in t.Args) targs.Add(Eval(a, scope));
                return Test(t.Name, tested, targs) != t.Negated;
            case UnaryExpr u:
                var x = Eval(u.Operand, scope);
                return u.Op switch
                {
                    "not" => !Py.Truthy(x),
                    "-" => x switch
                    {
                        long lx => (object)checked(-lx),
                        double dx => -dx,
                        bool bx => bx ? -1L : 0L,
                        Undefined ux => throw new TemplateRuntimeError(ux.Hint),
                        _ => throw new TemplateRuntimeError($"bad operand type for unary -: '{Py.TypeName(x)}'"),
                    },
                    _ => x switch
                    {
                        long or double => x,
                        bool bx => bx ? 1L : 0L,
                        Undefined ux => throw new TemplateRuntimeError(ux.Hint),
                        _ => throw new TemplateRuntimeError($"bad operand type for unary +: '{Py.TypeName(x)}'"),
                    },
                };
            case BinaryExpr b:
                if (b.Op == "and")
                {
                    var left = Eval(b.Left, scope);
                    return Py.Truthy(left) ? Eval(b.Right, scope) : left;
                }
                if (b.Op == "or")
                {
                    var left = Eval(b.Left, scope);
                    return Py.Truthy(left) ? left : Eval(b.Right, scope);
                }
                return Binary(b.Op, Eval(b.Left, scope), Eval(b.Right, scope));
            case CompareExpr c:
                var current = Eval(c.First, scope);
                foreach (var (op, rightExpr) in c.Rest)
                {
                    var right = Eval(rightExpr, scope);
                    if (!Compare(op, current, right)) return false;
                    current = right;
                }
                return true;
            case CondExpr c:
                return Py.Truthy(Eval(c.Test, scope)) ? Eval(c.Then, scope)
                    : c.Else is null ? new Undefined("the inline if expression evaluated to false and no else section was defined") : Eval(c.Else, scope);
            default:
                throw new TemplateRuntimeError($"unknown expression {expr.GetType().Name}");
        }
    }

    private (List<object?>, Dictionary<string, object?>) Arguments(List<Expr> args, List<(string Name, Expr Value)> kwargs, Scope scope)
    {
        var a = new List<object?>(args.Count);
        foreach (var e in args) a.Add(Eval(e, scope));
        var k = new Dictionary<string, object?>(StringComparer.Ordinal);
        foreach (var (name, e) in kwargs) k[name] = Eval(e, scope);
        return (a, k);
    }

    private static bool Compare(string op, object? a, object? b) => op switch
    {
        "==" => Py.Equal(a, b),
        "!=" => !Py.Equal(a, b),
        "<" => Py.Compare(a, b, op) < 0,
        ">" => Py.Compare(a, b, op) > 0,
        "<=" => Py.Compare(a, b, op) <= 0,
        ">=" => Py.Compare(a, b, op) >= 0,
        "in" => Contains(b, a),
        _ => !Contains(b, a),
    };

    /// <summary>Python's <c>needle in haystack</c>: substring, list member, dict key.</summary>
    private static bool Contains(object? haystack, object? needle)
    {
        switch (haystack)
        {
            case string s:
                if (needle is string n) return s.Contains(n, StringComparison.Ordinal);
                if (needle is Undefined u) throw new TemplateRuntimeError(u.Hint);
                throw new TemplateRuntimeError($"'in <string>' requires string as left operand, not {Py.TypeName(needle)}");
            case List<object?> list: return list.Any(x => Py.Equal(x, needle));
            case OrderedDictionary<string, object?> d: return needle is string k && d.ContainsKey(k);
            case Undefined: return false;
            case Namespace ns: return needle is string key && ns.Attributes.ContainsKey(key);
            default: throw new TemplateRuntimeError($"argument of type '{Py.TypeName(haystack)}' is not iterable");
        }
    }

    private static object? Binary(string op, object? a, object? b)
    {
        if (op == "~") return Limit(Py.Str(a) + Py.Str(b));
        if (a is Undefined ua) throw new TemplateRuntimeError(ua.Hint);
        if (b is Undefined ub) throw new TemplateRuntimeError(ub.Hint);
        try
        {
            if (Py.IsNumber(a) && Py.IsNumber(b))
            {
                bool floats = a is double || b is double;
                switch (op)
                {
                    case "+": return floats ? Py.ToDouble(a) + Py.ToDouble(b) : (object)checked(Py.ToLong(a) + Py.ToLong(b));
                    case "-": return floats ? Py.ToDouble(a) - Py.ToDouble(b) : (object)checked(Py.ToLong(a) - Py.ToLong(b));
                    case "*": return floats ? Py.ToDouble(a) * Py.ToDouble(b) : (object)checked(Py.ToLong(a) * Py.ToLong(b));
                    case "/":
                        if (Py.ToDouble(b) == 0) throw new TemplateRuntimeError("division by zero");
                        return Py.ToDouble(a) / Py.ToDouble(b);
                    case "//":
                        if (Py.ToDouble(b) == 0) throw new TemplateRuntimeError("integer division or modulo by zero");
                        if (floats) return Math.Floor(Py.ToDouble(a) / Py.ToDouble(b));
                        return FloorDiv(Py.ToLong(a), Py.ToLong(b));
                    case "%":
                        if (Py.ToDouble(b) == 0) throw new TemplateRuntimeError("integer division or modulo by zero");
                        if (floats)
                        {
                            double x = Py.ToDouble(a), y = Py.ToDouble(b), r = x % y;
                            return r != 0 && (r < 0) != (y < 0) ? r + y : r;
                        }
                        long la = Py.ToLong(a), lb = Py.ToLong(b);
                        return checked(la - lb * FloorDiv(la, lb));
                    case "**":
                        if (!floats && Py.ToLong(b) >= 0)
                        {
                            long result = 1, bas = Py.ToLong(a);
                            for (long e = Py.ToLong(b); e > 0; e--) result = checked(result * bas);
                            return result;
                        }
                        return Math.Pow(Py.ToDouble(a), Py.ToDouble(b));
                }
            }
            switch (op)
            {
                case "+" when a is string sa && b is string sb: return Limit(sa + sb);
                case "+" when a is List<object?> la && b is List<object?> lb && (la is PyTuple) == (lb is PyTuple):
                    if ((long)la.Count + lb.Count > JinjaLimits.MaxOutput) throw new TemplateRuntimeError("list grew too large");
                    return la is PyTuple ? new PyTuple(la.Concat(lb)) : la.Concat(lb).ToList();
                case "*" when a is string s && b is long or bool: return Repeat(s, Py.ToLong(b));
                case "*" when b is string s && a is long or bool: return Repeat(s, Py.ToLong(a));
                case "*" when a is List<object?> l && b is long or bool: return RepeatList(l, Py.ToLong(b));
                case "*" when b is List<object?> l && a is long or bool: return RepeatList(l, Py.ToLong(a));
            }
        }
        catch (OverflowException)
        {
            throw new TemplateRuntimeError("integer overflow (template integers are 64-bit here)");
        }
        throw new TemplateRuntimeError($"unsupported operand type(s) for {op}: '{Py.TypeName(a)}' and '{Py.TypeName(b)}'");
    }

    private static long FloorDiv(long a, long b)
    {
        long q = a / b;
        return (a % b != 0) && ((a < 0) != (b < 0)) ? q - 1 : q;
    }

    private static string Limit(string s) =>
        s.Length > JinjaLimits.MaxOutput ? throw new TemplateRuntimeError($"a string grew past {JinjaLimits.MaxOutput:N0} characters") : s;

    private static string Repeat(string s, long n)
    {
        if (n <= 0 || s.Length == 0) return "";
        if (n * s.Length > JinjaLimits.MaxOutput) throw new TemplateRuntimeError($"a string grew past {JinjaLimits.MaxOutput:N0} characters");
        return new StringBuilder(s.Length * (int)n).Insert(0, s, (int)n).ToString();
    }

    private static List<object?> RepeatList(List<object?> l, long n)
    {
        if (n <= 0 || l.Count == 0) return [];
        if (n * l.Count > JinjaLimits.MaxOutput) throw new TemplateRuntimeError("list grew too large");
        var result = new List<object?>();
        for (long i = 0; i < n; i++) result.AddRange(l);
        return result;
    }

    private static List<object?> Range(List<object?> args)
    {
        if (args.Count is < 1 or > 3 || args.Any(a => a is not (long or bool)))
            throw new TemplateRuntimeError("range() takes one to three integers");
        long start = 0, stop, step = 1;
        if (args.Count == 1) stop = Py.ToLong(args[0]);
        else
        {
            start = Py.ToLong(args[0]);
            stop = Py.ToLong(args[1]);
            if (args.Count == 3) step = Py.ToLong(args[2]);
        }
        if (step == 0) throw new TemplateRuntimeError("range() arg 3 must not be zero");
        var result = new List<object?>();
        for (long i = start; step > 0 ? i < stop : i > stop; i += step)
        {
            if (result.Count >= JinjaLimits.MaxOutput) throw new TemplateRuntimeError("range() too large");
            result.Add(i);
        }
        return result;
    }

    // ---------------------------------------------------------------- attribute and item access

    /// <summary><c>obj.name</c>: Jinja2 tries the attribute (a method of str, dict, ...), then the item, else Undefined.</summary>
    private object? GetAttribute(object? obj, string name)
    {
        switch (obj)
        {
            case Undefined u: throw new TemplateRuntimeError(u.Hint);
            case Namespace ns:
                return ns.Attributes.TryGetValue(name, out var nv) ? nv : new Undefined($"'Namespace' object has no attribute '{name}'");
            case LoopContext loop: return loop.Attribute(name);
            case string s:
                return (object?)StringMethod(s, name) ?? new Undefined($"'str object' has no attribute '{name}'");
            case OrderedDictionary<string, object?> d:
                if (DictMethod(d, name) is { } method) return method;
                return d.TryGetValue(name, out var dv) ? dv : new Undefined($"'dict object' has no attribute '{name}'");
            default:
                return new Undefined($"'{Py.TypeName(obj)} object' has no attribute '{name}'");
        }
    }

    /// <summary><c>obj[key]</c>: Jinja2 tries the item, then (for a string key) the attribute, else Undefined.</summary>
    private object? GetItem(object? obj, object? key)
    {
        switch (obj)
        {
            case Undefined u: throw new TemplateRuntimeError(u.Hint);
            case List<object?> list when key is long or bool:
                long i = Py.ToLong(key);
                if (i < 0) i += list.Count;
                return i >= 0 && i < list.Count ? list[(int)i] : new Undefined($"'list object' has no element {Py.ToLong(key)}");
            case string s when key is long or bool:
                var chars = Py.HasSurrogates(s) ? Py.Characters(s) : null;
                int length = chars?.Count ?? s.Length;
                long j = Py.ToLong(key);
                if (j < 0) j += length;
                if (j < 0 || j >= length) return new Undefined($"'str object' has no element {Py.ToLong(key)}");
                return chars is null ? s[(int)j].ToString() : chars[(int)j];
            case OrderedDictionary<string, object?> d when key is string k:
                if (d.TryGetValue(k, out var v)) return v;
                return (object?)DictMethod(d, k) ?? new Undefined($"'dict object' has no attribute '{k}'");
        }
        if (key is string name && obj is not null) return GetAttribute(obj, name);
        return new Undefined($"'{Py.TypeName(obj)} object' has no element {Py.Repr(key)}");
    }

    /// <summary>Python slicing (<c>xs[1:]</c>, <c>xs[::-1]</c>) of a list or string.</summary>
    private static object? Slice(object? obj, object? start, object? stop, object? step)
    {
        if (obj is Undefined u) throw new TemplateRuntimeError(u.Hint);
        List<object?> items;
        bool isString = false;
        if (obj is List<object?> l) items = l;
        else if (obj is string s)
        {
            items = Py.Characters(s).Cast<object?>().ToList();
            isString = true;
        }
        else throw new TemplateRuntimeError($"'{Py.TypeName(obj)}' object is not subscriptable");
        long? Bound(object? b, string what) => b switch
        {
            null => null,
            long or bool => Py.ToLong(b),
            _ => throw new TemplateRuntimeError($"slice {what} must be an integer or none, not {Py.TypeName(b)}"),
        };
        long n = items.Count;
        long st = Bound(step, "step") ?? 1;
        if (st == 0) throw new TemplateRuntimeError("slice step cannot be zero");
        long? a = Bound(start, "start"), b = Bound(stop, "stop");
        long lo, hi;
        if (st > 0)
        {
            lo = a is null ? 0 : a < 0 ? Math.Max(0, a.Value + n) : Math.Min(a.Value, n);
            hi = b is null ? n : b < 0 ? Math.Max(0, b.Value + n) : Math.Min(b.Value, n);
        }
        else
        {
            lo = a is null ? n - 1 : a < 0 ? Math.Max(-1, a.Value + n) : Math.Min(a.Value, n - 1);
            hi = b is null ? -1 : b < 0 ? Math.Max(-1, b.Value + n) : Math.Min(b.Value, n - 1);
        }
        var result = new List<object?>();
        for (long i = lo; st > 0 ? i < hi : i > hi; i += st) result.Add(items[(int)i]);
        return isString ? string.Concat(result.Cast<string>()) : obj is PyTuple ? new PyTuple(result) : result;
    }

    // ---------------------------------------------------------------- methods of str and dict

    private static Callable? DictMethod(OrderedDictionary<string, object?> d, string name) => name switch
    {
        "items" => new Callable("dict.items", (_, _) => Items(d)),
        "keys" => new Callable("dict.keys", (_, _) => d.Keys.Cast<object?>().ToList()),
        "values" => new Callable("dict.values", (_, _) => d.Values.ToList()),
        "get" => new Callable("dict.get", (args, _) =>
        {
            if (args.Count is < 1 or > 2) throw new TemplateRuntimeError("get() takes a key and an optional default");
            return args[0] is string k && d.TryGetValue(k, out var v) ? v : args.Count == 2 ? args[1] : null;
        }),
        _ => null,
    };

    private static List<object?> Items(OrderedDictionary<string, object?> d) =>
        d.Select(kv => (object?)new PyTuple([kv.Key, kv.Value])).ToList();

    private static Callable? StringMethod(string s, string name)
    {
        Func<List<object?>, Dictionary<string, object?>, object?>? call = name switch
        {
            "startswith" => (args, _) => Affix(s, args, "startswith"),
            "endswith" => (args, _) => Affix(s, args, "endswith"),
            "strip" => (args, _) => Strip(s, OptionalChars(args, name), true, true),
            "lstrip" => (args, _) => Strip(s, OptionalChars(args, name), true, false),
            "rstrip" => (args, _) => Strip(s, OptionalChars(args, name), false, true),
            "split" => (args, kwargs) => Split(s, args, kwargs),
            "replace" => (args, _) => args.Count is 2 or 3 && args[0] is string o && args[1] is string n
                ? Replace(s, o, n, args.Count == 3 ? Py.ToLong(args[2] is long or bool ? args[2] : throw new TemplateRuntimeError("replace() count must be an integer")) : -1)
                : throw new TemplateRuntimeError("replace() takes two strings and an optional count"),
            "upper" => (_, _) => s.ToUpperInvariant(),
            "lower" => (_, _) => s.ToLowerInvariant(),
            "title" => (_, _) => PyTitle(s),
            "capitalize" => (_, _) => Capitalize(s),
            "find" => (args, _) => args.Count == 1 && args[0] is string sub ? (long)CodePointIndex(s, s.IndexOf(sub, StringComparison.Ordinal)) : throw new TemplateRuntimeError("find() takes one string"),
            "count" => (args, _) => args.Count == 1 && args[0] is string sub ? (long)CountOf(s, sub) : throw new TemplateRuntimeError("count() takes one string"),
            "join" => (args, _) => args.Count == 1 ? Limit(string.Join(s, Iterate(args[0]).Select(x => x is string xs ? xs : throw new TemplateRuntimeError($"sequence item: expected str instance, {Py.TypeName(x)} found")))) : throw new TemplateRuntimeError("join() takes one iterable"),
            "splitlines" => (_, _) => SplitLines(s),
            "isdigit" => (_, _) => s.Length > 0 && s.All(char.IsDigit),
            "isalpha" => (_, _) => s.Length > 0 && s.All(char.IsLetter),
            "isspace" => (_, _) => s.Length > 0 && s.All(Py.IsSpace),
            "islower" => (_, _) => s.Any(char.IsLetter) && !s.Any(char.IsUpper),
            "isupper" => (_, _) => s.Any(char.IsLetter) && !s.Any(char.IsLower),
            _ => null,
        };
        return call is null ? null : new Callable("str." + name, call);
    }

    /// <summary>Python's str.splitlines(): any line boundary, \r\n as one, no empty last line for a trailing break.</summary>
    private static List<object?> SplitLines(string s)
    {
        var lines = new List<object?>();
        int start = 0;
        for (int i = 0; i < s.Length; i++)
        {
            char c = s[i];
            if (c is '\n' or '\r' or '\v' or '\f' or '\x1c' or '\x1d' or '\x1e' or '\x85' or '\u2028' or '\u2029')
            {
                lines.Add(s[start..i]);
                if (c == '\r' && i + 1 < s.Length && s[i + 1] == '\n') i++;
                start = i + 1;
            }
        }
        if (start < s.Length) lines.Add(s[start..]);
        return lines;
    }

    private static long CodePointIndex(string s, int utf16Index) => utf16Index < 0 ? -1 : Py.Length(s[..utf16Index]);

    private static int CountOf(string s, string sub)
    {
        if (sub.Length == 0) return Py.Length(s) + 1;
        int n = 0;
        for (int i = s.IndexOf(sub, StringComparison.Ordinal); i >= 0; i = s.IndexOf(sub, i + sub.Length, StringComparison.Ordinal)) n++;
        return n;
    }

    private static bool Affix(string s, List<object?> args, string name)
    {
        if (args.Count != 1) throw new TemplateRuntimeError($"{name}() takes one string or a tuple of strings");
        IEnumerable<object?> options = args[0] is List<object?> l ? l : [args[0]];
        foreach (var o in options)
        {
            if (o is not string affix) throw new TemplateRuntimeError($"{name}() takes strings, not {Py.TypeName(o)}");
            if (name == "startswith" ? s.StartsWith(affix, StringComparison.Ordinal) : s.EndsWith(affix, StringComparison.Ordinal)) return true;
        }
        return false;
    }

    private static string? OptionalChars(List<object?> args, string name) => args.Count switch
    {
        0 => null,
        1 when args[0] is null => null,
        1 when args[0] is string c => c,
        _ => throw new TemplateRuntimeError($"{name}() takes an optional string of characters"),
    };

    /// <summary>Python's strip family: <paramref name="chars"/> is a set of characters, null meaning white space.</summary>
    internal static string Strip(string s, string? chars, bool left, bool right)
    {
        bool Strippable(char c) => chars is null ? Py.IsSpace(c) : chars.Contains(c);
        int start = 0, end = s.Length;
        if (left) while (start < end && Strippable(s[start])) start++;
        if (right) while (end > start && Strippable(s[end - 1])) end--;
        return s[start..end];
    }

    private static List<object?> Split(string s, List<object?> args, Dictionary<string, object?> kwargs)
    {
        object? sepArg = args.Count > 0 ? args[0] : kwargs.GetValueOrDefault("sep");
        object? maxArg = args.Count > 1 ? args[1] : kwargs.GetValueOrDefault("maxsplit", -1L);
        if (sepArg is not (null or string) || maxArg is not (long or bool)) throw new TemplateRuntimeError("split() takes an optional separator string and max split count");
        long max = Py.ToLong(maxArg);
        var result = new List<object?>();
        if (sepArg is string sep)
        {
            if (sep.Length == 0) throw new TemplateRuntimeError("empty separator");
            int from = 0;
            while (max < 0 || result.Count < max)
            {
                int at = s.IndexOf(sep, from, StringComparison.Ordinal);
                if (at < 0) break;
                result.Add(s[from..at]);
                from = at + sep.Length;
            }
            result.Add(s[from..]);
            return result;
        }
        // No separator: runs of white space split, and leading/trailing white space yields no empty strings.
        int i = 0;
        while (true)
        {
            while (i < s.Length && Py.IsSpace(s[i])) i++;
            if (i >= s.Length) break;
            if (max >= 0 && result.Count >= max)
            {
                result.Add(Strip(s[i..], null, false, true));
                break;
            }
            int start = i;
            while (i < s.Length && !Py.IsSpace(s[i])) i++;
            result.Add(s[start..i]);
        }
        return result;
    }

    /// <summary>Python's str.replace: an empty <paramref name="old"/> inserts between every character.</summary>
    private static string Replace(string s, string old, string replacement, long count)
    {
        if (count == 0) return s;
        if (old.Length == 0)
        {
            var chars = Py.Characters(s);
            var sb = new StringBuilder();
            long done = 0;
            for (int i = 0; i <= chars.Count; i++)
            {
                if (count < 0 || done < count)
                {
                    sb.Append(replacement);
                    done++;
                }
                if (i < chars.Count) sb.Append(chars[i]);
            }
            return Limit(sb.ToString());
        }
        if (count < 0) return Limit(s.Replace(old, replacement, StringComparison.Ordinal));
        var result = new StringBuilder();
        int from = 0;
        for (long n = 0; n < count; n++)
        {
            int at = s.IndexOf(old, from, StringComparison.Ordinal);
            if (at < 0) break;
            result.Append(s, from, at - from).Append(replacement);
            from = at + old.Length;
        }
        return Limit(result.Append(s, from, s.Length - from).ToString());
    }

    /// <summary>Python's str.title(): a cased character after an uncased one starts a word.</summary>
    private static string PyTitle(string s)
    {
        var sb = new StringBuilder(s.Length);
        bool previousCased = false;
        foreach (char c in s)
        {
            bool cased = char.IsUpper(c) || char.IsLower(c) || char.IsLetter(c) && char.ToUpperInvariant(c) != char.ToLowerInvariant(c);
            sb.Append(cased ? previousCased ? char.ToLowerInvariant(c) : char.ToUpperInvariant(c) : c);
            previousCased = cased;
        }
        return sb.ToString();
    }

    private static string Capitalize(string s) =>
        s.Length == 0 ? s : char.ToUpperInvariant(s[0]) + s[1..].ToLowerInvariant();

    // ---------------------------------------------------------------- iteration

    /// <summary>The items a for loop (or a filter) sees: list items, a string's characters, a dict's keys; nothing for Undefined.</summary>
    private static List<object?> Iterate(object? v) => v switch
    {
        List<object?> l => l,
        string s => Py.Characters(s).Cast<object?>().ToList(),
        OrderedDictionary<string, object?> d => d.Keys.Cast<object?>().ToList(),
        Undefined => [],
        _ => throw new TemplateRuntimeError($"'{Py.TypeName(v)}' object is not iterable"),
    };

    // ---------------------------------------------------------------- filters

    private object? Filter(string name, object? value, List<object?> args, Dictionary<string, object?> kwargs)
    {
        object? Arg(int i, string key, object? fallback) =>
            i < args.Count ? args[i] : kwargs.TryGetValue(key, out var v) ? v : fallback;
        switch (name)
        {
            case "trim":
                return Strip(Py.Str(value), Arg(0, "chars", null) is string chars ? chars : null, true, true);
            case "length":
            case "count":
                return value switch
                {
                    string s => (long)Py.Length(s),
                    List<object?> l => (long)l.Count,
                    OrderedDictionary<string, object?> d => (long)d.Count,
                    Undefined => 0L,
                    _ => throw new TemplateRuntimeError($"object of type '{Py.TypeName(value)}' has no len()"),
                };
            case "upper": return Py.Str(value).ToUpperInvariant();
            case "lower": return Py.Str(value).ToLowerInvariant();
            case "capitalize": return Capitalize(Py.Str(value));
            case "title": return JinjaTitle(Py.Str(value));
            case "string": return Py.Str(value);
            case "safe": return value;
            case "tojson": return ToJson(value, args, kwargs);
            case "default":
            case "d":
                bool boolean = Py.Truthy(Arg(1, "boolean", false));
                return value is Undefined || (boolean && !Py.Truthy(value)) ? Arg(0, "default_value", "") : value;
            case "join":
                string separator = Py.Str(Arg(0, "d", ""));
                var attribute = Arg(1, "attribute", null);
                var parts = Iterate(value).Select(x => Py.Str(attribute is null ? x : AttributePath(x, attribute)));
                return Limit(string.Join(separator, parts));
            case "list": return Iterate(value).ToList();
            case "first":
                var all = Iterate(value);
                return all.Count > 0 ? all[0] : new Undefined("No first item, sequence was empty.");
            case "last":
                var seq = Iterate(value);
                return seq.Count > 0 ? seq[^1] : new Undefined("No last item, sequence was empty.");
            case "reverse":
                if (value is string rs) return string.Concat(Enumerable.Reverse(Py.Characters(rs)));
                var reversed = Iterate(value).ToList();
                reversed.Reverse();
                return reversed;
            case "replace":
                if (Arg(0, "old", null) is not string old || Arg(1, "new", null) is not string replacement)
                    throw new TemplateRuntimeError("replace takes two strings");
                var countArg = Arg(2, "count", null);
                return Replace(Py.Str(value), old, replacement, countArg is null ? -1 : countArg is long or bool ? Py.ToLong(countArg) : throw new TemplateRuntimeError("replace count must be an integer"));
            case "items":
                return value switch
                {
                    OrderedDictionary<string, object?> d => Items(d),
                    Undefined => new List<object?>(),
                    _ => throw new TemplateRuntimeError($"can only get item pairs from a mapping, not {Py.TypeName(value)}"),
                };
            case "selectattr":
            case "rejectattr":
                if (args.Count < 1) throw new TemplateRuntimeError($"{name} needs an attribute name");
                return Iterate(value).Where(x => Selected(AttributePath(x, args[0]), args.Skip(1).ToList()) == (name == "selectattr")).ToList();
            case "select":
            case "reject":
                return Iterate(value).Where(x => Selected(x, args) == (name == "select")).ToList();
            case "map":
                if (kwargs.TryGetValue("attribute", out var attr))
                {
                    kwargs.TryGetValue("default", out var fallback);
                    return Iterate(value).Select(x =>
                    {
                        var got = AttributePath(x, attr);
                        return got is Undefined && kwargs.ContainsKey("default") ? fallback : got;
                    }).ToList();
                }
                if (args.Count < 1 || args[0] is not string filterName) throw new TemplateRuntimeError("map needs a filter name or attribute=");
                return Iterate(value).Select(x => Filter(filterName, x, args.Skip(1).ToList(), new Dictionary<string, object?>(StringComparer.Ordinal))).ToList();
            case "sort":
                bool descending = Py.Truthy(Arg(0, "reverse", false));
                bool caseSensitive = Py.Truthy(Arg(1, "case_sensitive", false));
                var sortBy = Arg(2, "attribute", null);
                var keyed = Iterate(value).Select(x =>
                {
                    var key = sortBy is null ? x : AttributePath(x, sortBy);
                    return (Item: x, Key: !caseSensitive && key is string ks ? ks.ToLowerInvariant() : key);
                }).ToList();
                // Stable in both directions, as Python's sorted(reverse=True) is.
                var order = Comparer<object?>.Create((a, b) => Py.Compare(a, b, "<"));
                return (descending ? keyed.OrderByDescending(k => k.Key, order) : keyed.OrderBy(k => k.Key, order)).Select(k => k.Item).ToList();
            case "int":
                return ToInt(value, Arg(0, "default", 0L));
            case "float":
                return ToFloat(value, Arg(0, "default", 0.0));
            case "abs":
                return value switch
                {
                    long l => (object)checked(Math.Abs(l)),
                    double d => Math.Abs(d),
                    bool b => b ? 1L : 0L,
                    _ => throw new TemplateRuntimeError($"bad operand type for abs(): '{Py.TypeName(value)}'"),
                };
            default:
                throw new TemplateRuntimeError($"no filter named '{name}' (outside the Jinja subset Afinado renders chat templates with)");
        }
    }

    /// <summary>Jinja2's title filter: a word starts after white space, '-', or an opening bracket.</summary>
    private static string JinjaTitle(string s)
    {
        var sb = new StringBuilder(s.Length);
        bool start = true;
        foreach (char c in s)
        {
            if (Py.IsSpace(c) || c is '-' or '(' or '{' or '[' or '<')
            {
                sb.Append(c);
                start = true;
            }
            else
            {
                sb.Append(start ? char.ToUpperInvariant(c) : char.ToLowerInvariant(c));
                start = false;
            }
        }
        return sb.ToString();
    }

    /// <summary>An attribute path as selectattr/map/join take it: "a.b" looks up a, then b; integers index.</summary>
    private object? AttributePath(object? item, object? path)
    {
        if (path is long or bool) return GetItem(item, path);
        if (path is not string p) throw new TemplateRuntimeError($"attribute must be a string, not {Py.TypeName(path)}");
        foreach (var part in p.Split('.'))
        {
            item = long.TryParse(part, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long idx) ? GetItem(item, idx) : GetItem(item, part);
            if (item is Undefined) return item;
        }
        return item;
    }

    private bool Selected(object? value, List<object?> args)
    {
        if (args.Count == 0) return Py.Truthy(value);
        if (args[0] is not string test) throw new TemplateRuntimeError("the test name must be a string");
        return Test(test, value, args.Skip(1).ToList());
    }

    private static object? ToInt(object? value, object? fallback) => value switch
    {
        long or bool => Py.ToLong(value),
        double d when !double.IsNaN(d) && !double.IsInfinity(d) && Math.Abs(d) < 9.2e18 => (long)Math.Truncate(d),
        string s when long.TryParse(s.Trim(), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long l) => l,
        string s when double.TryParse(s.Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out double d) && Math.Abs(d) < 9.2e18 => (long)Math.Truncate(d),
        _ => fallback,
    };

    private static object? ToFloat(object? value, object? fallback) => value switch
    {
        long or bool or double => Py.ToDouble(value),
        string s when double.TryParse(s.Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out double d) => d,
        _ => fallback,
    };

    /// <summary>transformers' tojson: <c>json.dumps(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False)</c>
    /// (positional arguments in that order); with an indent Python's item separator loses its space.</summary>
    private static string ToJson(object? value, List<object?> args, Dictionary<string, object?> kwargs)
    {
        object? Arg(int i, string key) => i < args.Count ? args[i] : kwargs.GetValueOrDefault(key);
        bool ascii = Py.Truthy(Arg(0, "ensure_ascii"));
        string? indent = Arg(1, "indent") switch
        {
            null => null,
            long n => new string(' ', (int)Math.Clamp(n, 0, 1000)),
            string s => s,
            var other => throw new TemplateRuntimeError($"tojson indent must be an integer or string, not {Py.TypeName(other)}"),
        };
        string itemSep = indent is null ? ", " : ",", keySep = ": ";
        if (Arg(2, "separators") is { } separators)
        {
            if (separators is not List<object?> { Count: 2 } pair || pair[0] is not string a || pair[1] is not string b)
                throw new TemplateRuntimeError("tojson separators must be two strings");
            (itemSep, keySep) = (a, b);
        }
        return Limit(Py.Json(value, ascii, indent, itemSep, keySep, Py.Truthy(Arg(3, "sort_keys"))));
    }

    // ---------------------------------------------------------------- tests

    private static bool Test(string name, object? v, List<object?> args)
    {
        object? Other() => args.Count == 1 ? args[0] : throw new TemplateRuntimeError($"test '{name}' takes one argument");
        return name switch
        {
            "defined" => v is not Undefined,
            "undefined" => v is Undefined,
            "none" => v is null,
            "string" => v is string,
            "mapping" => v is OrderedDictionary<string, object?>,
            "iterable" => v is string or List<object?> or OrderedDictionary<string, object?> or Undefined,
            "sequence" => v is string or List<object?> or OrderedDictionary<string, object?> or Undefined,
            "number" => v is bool or long or double,
            "integer" => v is long,
            "float" => v is double,
            "boolean" => v is bool,
            "true" => v is true,
            "false" => v is false,
            "callable" => v is Callable,
            "even" => v is long or bool ? Py.ToLong(v) % 2 == 0 : throw new TemplateRuntimeError($"test 'even' needs an integer, not {Py.TypeName(v)}"),
            "odd" => v is long or bool ? Py.ToLong(v) % 2 != 0 : throw new TemplateRuntimeError($"test 'odd' needs an integer, not {Py.TypeName(v)}"),
            "divisibleby" => Other() is var d && Py.IsNumber(v) && Py.IsNumber(d) && Py.ToDouble(d) != 0
                ? Py.ToDouble(v) % Py.ToDouble(d) == 0 : throw new TemplateRuntimeError("test 'divisibleby' needs two numbers, the second not zero"),
            "lower" => v is string ls && ls == ls.ToLowerInvariant(),
            "upper" => v is string us && us == us.ToUpperInvariant(),
            "equalto" or "eq" or "==" => Py.Equal(v, Other()),
            "ne" or "!=" => !Py.Equal(v, Other()),
            "lt" or "lessthan" or "<" => Py.Compare(v, Other(), "<") < 0,
            "le" or "<=" => Py.Compare(v, Other(), "<=") <= 0,
            "gt" or "greaterthan" or ">" => Py.Compare(v, Other(), ">") > 0,
            "ge" or ">=" => Py.Compare(v, Other(), ">=") >= 0,
            "in" => Contains(Other(), v),
            "sameas" => Other() is var o && (v is null ? o is null : v is bool bv ? o is bool bo && bv == bo : ReferenceEquals(v, o)),
            _ => throw new TemplateRuntimeError($"no test named '{name}' (outside the Jinja subset Afinado renders chat templates with)"),
        };
    }

    // ---------------------------------------------------------------- strftime_now

    /// <summary>Python's strftime for the directives chat templates print dates with (<c>%d %b %Y</c> and kin).</summary>
    private static string Strftime(DateTime t, string format)
    {
        var inv = CultureInfo.InvariantCulture;
        var sb = new StringBuilder();
        for (int i = 0; i < format.Length; i++)
        {
            if (format[i] != '%' || i + 1 >= format.Length)
            {
                sb.Append(format[i]);
                continue;
            }
            char d = format[++i];
            sb.Append(d switch
            {
                'd' => t.Day.ToString("00", inv),
                'm' => t.Month.ToString("00", inv),
                'Y' => t.Year.ToString("0000", inv),
                'y' => (t.Year % 100).ToString("00", inv),
                'b' => t.ToString("MMM", inv),
                'B' => t.ToString("MMMM", inv),
                'a' => t.ToString("ddd", inv),
                'A' => t.ToString("dddd", inv),
                'H' => t.Hour.ToString("00", inv),
                'I' => ((t.Hour + 11) % 12 + 1).ToString("00", inv),
                'p' => t.Hour < 12 ? "AM" : "PM",
                'M' => t.Minute.ToString("00", inv),
                'S' => t.Second.ToString("00", inv),
                'j' => t.DayOfYear.ToString("000", inv),
                '%' => "%",
                _ => throw new TemplateRuntimeError($"strftime directive %{d} is outside what Afinado supports"),
            });
        }
        return sb.ToString();
    }
}

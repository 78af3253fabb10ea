using System.Globalization;
using System.Text;
using System.Text.Json;

namespace Afinado.Training.Chat;

// Template values are plain CLR objects with Python's meaning, because chat templates are written against Jinja2 on
// Python: null is None, bool, long (int), double (float), string (str), List<object?> (list and tuple),
// OrderedDictionary<string, object?> (dict: insertion order is what tojson and items() show), plus the types below.

/// <summary>Jinja2's default Undefined: falsy, renders as "", iterates as empty; an error only where Jinja2 raises one
/// (attribute or item of it, arithmetic, calls), with Jinja2's message.</summary>
internal sealed class Undefined
{
    public Undefined(string hint) => Hint = hint;

    /// <summary>Jinja2's wording: <c>'x' is undefined</c> or <c>'dict object' has no attribute 'y'</c>.</summary>
    public string Hint { get; }
}

/// <summary>A Python tuple (<c>(a, b)</c>, a dict item pair): a list that prints with parentheses and is never equal to a list.</summary>
internal sealed class PyTuple : List<object?>
{
    public PyTuple(IEnumerable<object?> items) : base(items) { }
}

/// <summary>The object <c>namespace()</c> returns: the one value a template may change from inside a loop.</summary>
internal sealed class Namespace
{
    public OrderedDictionary<string, object?> Attributes { get; } = new(StringComparer.Ordinal);
}

/// <summary>A global function, bound method or loop helper; takes positional and keyword arguments.</summary>
internal sealed class Callable
{
    public Callable(string name, Func<List<object?>, Dictionary<string, object?>, object?> call)
    {
        Name = name;
        Call = call;
    }

    public string Name { get; }
    public Func<List<object?>, Dictionary<string, object?>, object?> Call { get; }
}

/// <summary>An error while rendering, with the template line; <see cref="JinjaTemplate"/> turns it into an InputError.</summary>
internal sealed class TemplateRuntimeError : Exception
{
    public TemplateRuntimeError(string message, int line = 0, bool raisedByTemplate = false) : base(message)
    {
        Line = line;
        RaisedByTemplate = raisedByTemplate;
    }

    public int Line { get; set; }

    /// <summary>True for <c>raise_exception(msg)</c>: the template's author refused the data, not a template bug.</summary>
    public bool RaisedByTemplate { get; }
}

/// <summary>Python's semantics for the values above: truth, str(), repr(), ==, ordering, json.dumps.</summary>
internal static class Py
{
    public static bool Truthy(object? v) => v switch
    {
        null or Undefined => false,
        bool b => b,
        long l => l != 0,
        double d => d != 0,
        string s => s.Length > 0,
        List<object?> l => l.Count > 0,
        OrderedDictionary<string, object?> d => d.Count > 0,
        _ => true,
    };

    public static string TypeName(object? v) => v switch
    {
        null => "NoneType",
        Undefined => "Undefined",
        bool => "bool",
        long => "int",
        double => "float",
        string => "str",
        PyTuple => "tuple",
        List<object?> => "list",
        OrderedDictionary<string, object?> => "dict",
        Namespace => "Namespace",
        LoopContext => "LoopContext",
        Callable => "function",
        _ => v.GetType().Name,
    };

    /// <summary>str(v) as Jinja2 prints it (Undefined prints nothing).</summary>
    public static string Str(object? v) => v switch
    {
        string s => s,
        Undefined => "",
        _ => Repr(v),
    };

    public static string Repr(object? v)
    {
        var sb = new StringBuilder();
        Repr(v, sb, 0);
        return sb.ToString();
    }

    private static void Repr(object? v, StringBuilder sb, int depth)
    {
        if (depth > JinjaLimits.MaxDepth) throw new TemplateRuntimeError("value nested too deeply to print");
        switch (v)
        {
            case null: sb.Append("None"); break;
            case Undefined: break;
            case bool b: sb.Append(b ? "True" : "False"); break;
            case long l: sb.Append(l.ToString(CultureInfo.InvariantCulture)); break;
            case double d: sb.Append(FloatRepr(d)); break;
            case string s: StringRepr(s, sb); break;
            case List<object?> list:
                bool tuple = list is PyTuple;
                sb.Append(tuple ? '(' : '[');
                for (int i = 0; i < list.Count; i++)
                {
                    if (i > 0) sb.Append(", ");
                    Repr(list[i], sb, depth + 1);
                }
                if (tuple && list.Count == 1) sb.Append(',');
                sb.Append(tuple ? ')' : ']');
                break;
            case OrderedDictionary<string, object?> dict:
                sb.Append('{');
                bool first = true;
                foreach (var (k, value) in dict)
                {
                    if (!first) sb.Append(", ");
                    first = false;
                    StringRepr(k, sb);
                    sb.Append(": ");
                    Repr(value, sb, depth + 1);
                }
                sb.Append('}');
                break;
            case Namespace ns:
                sb.Append("<Namespace {");
                bool firstAttr = true;
                foreach (var (k, value) in ns.Attributes)
                {
                    if (!firstAttr) sb.Append(", ");
                    firstAttr = false;
                    StringRepr(k, sb);
                    sb.Append(": ");
                    Repr(value, sb, depth + 1);
                }
                sb.Append("}>");
                break;
            case Callable c: sb.Append("<function ").Append(c.Name).Append('>'); break;
            case LoopContext: sb.Append("<LoopContext>"); break;
            default: sb.Append(v); break;
        }
    }

    /// <summary>Python's repr of a str: single quotes unless the text has ' and no ".</summary>
    private static void StringRepr(string s, StringBuilder sb)
    {
        char quote = s.Contains('\'') && !s.Contains('"') ? '"' : '\'';
        sb.Append(quote);
        foreach (char c in s)
        {
            if (c == quote || c == '\\') sb.Append('\\').Append(c);
            else if (c == '\n') sb.Append("\\n");
            else if (c == '\r') sb.Append("\\r");
            else if (c == '\t') sb.Append("\\t");
            else if (c < 0x20 || c == 0x7f) sb.Append("\\x").Append(((int)c).ToString("x2", CultureInfo.InvariantCulture));
            else sb.Append(c);
        }
        sb.Append(quote);
    }

    /// <summary>Python's repr(float): the shortest round-trip digits, positional for exponents -4..15, else
    /// <c>1e+16</c> / <c>1e-05</c>; always with a fraction or exponent (<c>1.0</c>).</summary>
    public static string FloatRepr(double d)
    {
        if (double.IsNaN(d)) return "nan";
        if (double.IsPositiveInfinity(d)) return "inf";
        if (double.IsNegativeInfinity(d)) return "-inf";
        if (d == 0) return double.IsNegative(d) ? "-0.0" : "0.0";
        // "E16" would pad; "R" gives the shortest digits that round-trip, which is what Python prints.
        string r = Math.Abs(d).ToString("R", CultureInfo.InvariantCulture);
        string mantissa = r;
        int exp = 0;
        int e = r.IndexOfAny(['E', 'e']);
        if (e >= 0)
        {
            mantissa = r[..e];
            exp = int.Parse(r[(e + 1)..], NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture);
        }
        int dot = mantissa.IndexOf('.');
        string digits = dot < 0 ? mantissa : mantissa[..dot] + mantissa[(dot + 1)..];
        int pointPos = (dot < 0 ? mantissa.Length : dot) + exp; // decimal point position relative to digits
        int lead = 0;
        while (lead < digits.Length - 1 && digits[lead] == '0') lead++;
        digits = digits[lead..];
        pointPos -= lead;
        digits = digits.TrimEnd('0');
        if (digits.Length == 0) digits = "0";
        int sciExp = pointPos - 1;
        var sb = new StringBuilder();
        if (d < 0) sb.Append('-');
        if (sciExp < -4 || sciExp >= 16)
        {
            sb.Append(digits[0]);
            if (digits.Length > 1) sb.Append('.').Append(digits, 1, digits.Length - 1);
            sb.Append('e').Append(sciExp < 0 ? '-' : '+').Append(Math.Abs(sciExp).ToString("00", CultureInfo.InvariantCulture));
        }
        else if (pointPos <= 0)
            sb.Append("0.").Append('0', -pointPos).Append(digits);
        else if (pointPos >= digits.Length)
            sb.Append(digits).Append('0', pointPos - digits.Length).Append(".0");
        else
            sb.Append(digits, 0, pointPos).Append('.').Append(digits, pointPos, digits.Length - pointPos);
        return sb.ToString();
    }

    public static bool IsNumber(object? v) => v is bool or long or double;

    public static double ToDouble(object? v) => v switch
    {
        bool b => b ? 1 : 0,
        long l => l,
        double d => d,
        _ => throw new InvalidOperationException(),
    };

    public static long ToLong(object? v) => v switch
    {
        bool b => b ? 1 : 0,
        long l => l,
        _ => throw new InvalidOperationException(),
    };

    /// <summary>Python's ==: numbers by value across bool/int/float, containers element by element.</summary>
    public static bool Equal(object? a, object? b, int depth = 0)
    {
        if (depth > JinjaLimits.MaxDepth) throw new TemplateRuntimeError("values nested too deeply to compare");
        if (a is null || b is null) return a is null && b is null;
        if (IsNumber(a) && IsNumber(b))
        {
            if (a is double || b is double) return ToDouble(a) == ToDouble(b);
            return ToLong(a) == ToLong(b);
        }
        switch (a)
        {
            case string sa: return b is string sb && string.Equals(sa, sb, StringComparison.Ordinal);
            case Undefined: return b is Undefined;
            case List<object?> la:
                if (b is not List<object?> lb || la.Count != lb.Count || (la is PyTuple) != (lb is PyTuple)) return false;
                for (int i = 0; i < la.Count; i++)
                    if (!Equal(la[i], lb[i], depth + 1)) return false;
                return true;
            case OrderedDictionary<string, object?> da:
                if (b is not OrderedDictionary<string, object?> db || da.Count != db.Count) return false;
                foreach (var (k, v) in da)
                    if (!db.TryGetValue(k, out var w) || !Equal(v, w, depth + 1)) return false;
                return true;
            default: return ReferenceEquals(a, b);
        }
    }

    /// <summary>Python's ordering (&lt; &gt; &lt;= &gt;=): numbers, strings by code point, lists element by element.</summary>
    public static int Compare(object? a, object? b, string op, int depth = 0)
    {
        if (depth > JinjaLimits.MaxDepth) throw new TemplateRuntimeError("values nested too deeply to compare");
        if (IsNumber(a) && IsNumber(b))
        {
            if (a is double || b is double) return ToDouble(a).CompareTo(ToDouble(b));
            return ToLong(a).CompareTo(ToLong(b));
        }
        if (a is string sa && b is string sb) return CompareCodePoints(sa, sb);
        if (a is List<object?> la && b is List<object?> lb)
        {
            for (int i = 0; i < Math.Min(la.Count, lb.Count); i++)
                if (!Equal(la[i], lb[i], depth + 1)) return Compare(la[i], lb[i], op, depth + 1);
            return la.Count.CompareTo(lb.Count);
        }
        if (a is Undefined u) throw new TemplateRuntimeError(u.Hint);
        if (b is Undefined v) throw new TemplateRuntimeError(v.Hint);
        throw new TemplateRuntimeError($"'{op}' not supported between instances of '{TypeName(a)}' and '{TypeName(b)}'");
    }

    private static int CompareCodePoints(string a, string b)
    {
        // Ordinal UTF-16 order differs from Python's code point order only around surrogates, so compare runes there.
        int i = 0, j = 0;
        while (i < a.Length && j < b.Length)
        {
            Rune.DecodeFromUtf16(a.AsSpan(i), out var ra, out int na);
            Rune.DecodeFromUtf16(b.AsSpan(j), out var rb, out int nb);
            if (ra.Value != rb.Value) return ra.Value.CompareTo(rb.Value);
            i += na;
            j += nb;
        }
        return (a.Length - i).CompareTo(b.Length - j);
    }

    /// <summary>Python's str.isspace for one UTF-16 unit: .NET's white space plus the four ASCII separators.</summary>
    public static bool IsSpace(char c) => char.IsWhiteSpace(c) || (c >= '\x1c' && c <= '\x1f');

    public static bool HasSurrogates(string s)
    {
        foreach (char c in s)
            if (char.IsSurrogate(c)) return true;
        return false;
    }

    /// <summary>The code points of a string as Python indexes them (one element per character, not per UTF-16 unit).</summary>
    public static List<string> Characters(string s)
    {
        var result = new List<string>(s.Length);
        for (int i = 0; i < s.Length;)
        {
            int n = char.IsHighSurrogate(s[i]) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1]) ? 2 : 1;
            result.Add(s.Substring(i, n));
            i += n;
        }
        return result;
    }

    public static int Length(string s) => HasSurrogates(s) ? Characters(s).Count : s.Length;

    /// <summary>json.dumps as transformers' tojson calls it (ensure_ascii=False by default; indent and separators as Python).</summary>
    public static string Json(object? v, bool ensureAscii, string? indent, string itemSeparator, string keySeparator, bool sortKeys)
    {
        var sb = new StringBuilder();
        Json(v, sb, ensureAscii, indent, itemSeparator, keySeparator, sortKeys, 0);
        return sb.ToString();
    }

    private static void Json(object? v, StringBuilder sb, bool ascii, string? indent, string itemSep, string keySep, bool sortKeys, int level)
    {
        if (level > JinjaLimits.MaxDepth) throw new TemplateRuntimeError("value nested too deeply for tojson");
        switch (v)
        {
            case null: sb.Append("null"); break;
            case bool b: sb.Append(b ? "true" : "false"); break;
            case long l: sb.Append(l.ToString(CultureInfo.InvariantCulture)); break;
            case double d:
                sb.Append(double.IsNaN(d) ? "NaN" : double.IsPositiveInfinity(d) ? "Infinity" : double.IsNegativeInfinity(d) ? "-Infinity" : FloatRepr(d));
                break;
            case string s: JsonString(s, sb, ascii); break;
            case List<object?> list:
                if (list.Count == 0) { sb.Append("[]"); break; }
                sb.Append('[');
                for (int i = 0; i < list.Count; i++)
                {
                    if (i > 0) sb.Append(itemSep);
                    NewLine(sb, indent, level + 1);
                    Json(list[i], sb, ascii, indent, itemSep, keySep, sortKeys, level + 1);
                }
                NewLine(sb, indent, level);
                sb.Append(']');
                break;
            case OrderedDictionary<string, object?> dict:
                if (dict.Count == 0) { sb.Append("{}"); break; }
                sb.Append('{');
                IEnumerable<KeyValuePair<string, object?>> entries = dict;
                if (sortKeys) entries = dict.OrderBy(e => e.Key, Comparer<string>.Create(CompareCodePoints));
                bool first = true;
                foreach (var (k, value) in entries)
                {
                    if (!first) sb.Append(itemSep);
                    first = false;
                    NewLine(sb, indent, level + 1);
                    JsonString(k, sb, ascii);
                    sb.Append(keySep);
                    Json(value, sb, ascii, indent, itemSep, keySep, sortKeys, level + 1);
                }
                NewLine(sb, indent, level);
                sb.Append('}');
                break;
            default:
                throw new TemplateRuntimeError($"Object of type {TypeName(v)} is not JSON serializable");
        }
    }

    private static void NewLine(StringBuilder sb, string? indent, int level)
    {
        if (indent is null) return;
        sb.Append('\n');
        for (int i = 0; i < level; i++) sb.Append(indent);
    }

    private static void JsonString(string s, StringBuilder sb, bool ascii)
    {
        sb.Append('"');
        foreach (char c in s)
        {
            switch (c)
            {
                case '"': sb.Append("\\\""); break;
                case '\\': sb.Append("\\\\"); break;
                case '\n': sb.Append("\\n"); break;
                case '\r': sb.Append("\\r"); break;
                case '\t': sb.Append("\\t"); break;
                case '\b': sb.Append("\\b"); break;
                case '\f': sb.Append("\\f"); break;
                default:
                    if (c < 0x20 || (ascii && c > 0x7e)) sb.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture));
                    else sb.Append(c);
                    break;
            }
        }
        sb.Append('"');
    }

    /// <summary>A JSON document's value as the template sees what Python's json.loads gives: integers stay int,
    /// numbers written with a fraction or exponent are float.</summary>
    public static object? FromJson(JsonElement e, int depth = 0)
    {
        if (depth > JinjaLimits.MaxDepth) throw new TemplateRuntimeError("JSON nested too deeply");
        switch (e.ValueKind)
        {
            case JsonValueKind.Object:
                var dict = new OrderedDictionary<string, object?>(StringComparer.Ordinal);
                foreach (var p in e.EnumerateObject()) dict[p.Name] = FromJson(p.Value, depth + 1);
                return dict;
            case JsonValueKind.Array:
                var list = new List<object?>();
                foreach (var item in e.EnumerateArray()) list.Add(FromJson(item, depth + 1));
                return list;
            case JsonValueKind.String: return e.GetString();
            case JsonValueKind.Number:
                string raw = e.GetRawText();
                if (raw.IndexOfAny(['.', 'e', 'E']) < 0 && e.TryGetInt64(out long l)) return l;
                return e.GetDouble();
            case JsonValueKind.True: return true;
            case JsonValueKind.False: return false;
            default: return null;
        }
    }
}

/// <summary>Bounds that keep a hostile or broken template from exhausting the stack or memory.</summary>
internal static class JinjaLimits
{
    /// <summary>Nesting of expressions, blocks and values: real chat templates nest under 20 deep.</summary>
    public const int MaxDepth = 200;

    /// <summary>Characters a rendering (or one string or list built while rendering) may reach: 64 Mi, beyond any prompt.</summary>
    public const int MaxOutput = 64 << 20;
}

/// <summary>The <c>loop</c> variable inside a for block.</summary>
internal sealed class LoopContext
{
    public LoopContext(List<object?> items) => Items = items;

    public List<object?> Items { get; }
    public int Index0 { get; set; }

    public object? Attribute(string name) => name switch
    {
        "index" => (long)(Index0 + 1),
        "index0" => (long)Index0,
        "revindex" => (long)(Items.Count - Index0),
        "revindex0" => (long)(Items.Count - Index0 - 1),
        "first" => Index0 == 0,
        "last" => Index0 == Items.Count - 1,
        "length" => (long)Items.Count,
        "depth" => 1L,
        "depth0" => 0L,
        "previtem" => Index0 > 0 ? Items[Index0 - 1] : new Undefined("there is no previous item"),
        "nextitem" => Index0 < Items.Count - 1 ? Items[Index0 + 1] : new Undefined("there is no next item"),
        "cycle" => new Callable("loop.cycle", (args, _) =>
            args.Count == 0 ? throw new TemplateRuntimeError("no items for cycling given") : args[Index0 % args.Count]),
        _ => new Undefined($"'LoopContext' object has no attribute '{name}'"),
    };
}

using System.Text;
using System.Text.RegularExpressions;
using Afinado.Planner.Memory;

namespace Afinado.Planner.Selection;

/// <summary>
/// A glob over Hugging Face tensor names (dot-separated: <c>model.layers.3.mlp.up_proj.weight</c>).
/// <list type="bullet">
/// <item><c>*</c> matches within one dotted segment (never a dot): <c>model.layers.*.mlp.up_proj.weight</c>.</item>
/// <item><c>**</c> matches across segments, dots included: <c>model.layers.**</c>, <c>**.q_proj.*</c>.</item>
/// <item><c>?</c> matches one character other than a dot.</item>
/// <item><c>{0..15}</c> matches an integer in that inclusive range; <c>{a,b}</c> matches either alternative.</item>
/// </list>
/// A pattern selects a tensor when it matches the whole name or a leading run of whole segments of it, so
/// <c>model.embed_tokens</c> and <c>model.layers.{0..15}</c> select every tensor under those modules.
/// </summary>
public sealed class TensorPattern
{
    private readonly Regex _regex;

    public TensorPattern(string pattern, InputText? field = null)
    {
        field ??= JobParameters.FreezePatterns;
        if (string.IsNullOrWhiteSpace(pattern))
            throw new InputError(field, "has an empty pattern", "Give a glob such as model.layers.{0..15} or **.mlp.**.");
        Text = pattern.Trim();
        _regex = new Regex("^" + Translate(Text, field) + @"(\..*)?$", RegexOptions.CultureInvariant | RegexOptions.Compiled, TimeSpan.FromSeconds(1));
    }

    public string Text { get; }

    public bool Matches(string tensorName) => _regex.IsMatch(tensorName);

    public override string ToString() => Text;

    private static string Translate(string glob, InputText field)
    {
        var sb = new StringBuilder();
        for (int i = 0; i < glob.Length; i++)
        {
            char c = glob[i];
            if (c == '*' && i + 1 < glob.Length && glob[i + 1] == '*') { sb.Append(".*"); i++; }
            else if (c == '*') sb.Append(@"[^.]*");
            else if (c == '?') sb.Append(@"[^.]");
            else if (c == '{')
            {
                int close = glob.IndexOf('}', i);
                if (close < 0) throw new InputError(field, $"pattern \"{glob}\" has an unclosed '{{'", "Close it, e.g. model.layers.{0..15}.");
                sb.Append(Braces(glob[(i + 1)..close], glob, field));
                i = close;
            }
            else sb.Append(Regex.Escape(c.ToString()));
        }
        return sb.ToString();
    }

    private static string Braces(string inner, string glob, InputText field)
    {
        var range = inner.Split("..");
        if (range.Length == 2)
        {
            if (!int.TryParse(range[0], out int lo) || !int.TryParse(range[1], out int hi) || lo < 0 || hi < lo || hi - lo > 100_000)
                throw new InputError(field, $"pattern \"{glob}\" has a bad range {{{inner}}}", "Write an ascending non-negative range such as {0..15}.");
            return "(?:" + string.Join("|", Enumerable.Range(lo, hi - lo + 1)) + ")";
        }
        var alternatives = inner.Split(',');
        if (alternatives.Any(a => a.Length == 0))
            throw new InputError(field, $"pattern \"{glob}\" has an empty alternative in {{{inner}}}", "Write alternatives such as {q_proj,v_proj}.");
        return "(?:" + string.Join("|", alternatives.Select(a => Translate(a, field))) + ")";
    }
}

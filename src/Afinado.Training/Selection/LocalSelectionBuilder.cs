using Afinado.Planner;
using Afinado.Planner.Architecture;

namespace Afinado.Training.Selection;

/// <summary>
/// Interim builder for <see cref="ParameterSelection"/> until the planner's shared TrainableSelection is on main:
/// full, freeze (globs: <c>*</c> within a dotted segment, <c>**</c> across; a pattern also selects everything under a
/// matched module prefix) and LoRA (PEFT targets: a module whose name equals the target or ends with <c>.target</c>;
/// <c>all-linear</c> = every linear except lm_head).
/// </summary>
public static class LocalSelectionBuilder
{
    public static ParameterSelection Create(ModelArchitecture arch, string method, IReadOnlyList<string> freeze,
        int loraRank, double loraAlpha, double loraDropout, IReadOnlyList<string> loraTargets)
    {
        switch (method)
        {
            case "full":
                return new ParameterSelection("full", arch.Tensors.Select(t => t.Name).ToHashSet(), []);
            case "freeze":
            {
                if (freeze.Count == 0)
                    throw new InputError("--freeze", "--method freeze needs at least one pattern", "Add e.g. --freeze 'model.layers.{0..1}' --freeze model.embed_tokens.");
                var regexes = freeze.Select(ToRegex).ToList();
                var trainable = arch.Tensors.Where(t => !regexes.Any(r => r.IsMatch(t.Name))).Select(t => t.Name).ToHashSet();
                if (trainable.Count == arch.Tensors.Count)
                    throw new InputError("--freeze", $"the patterns {string.Join(", ", freeze)} match no tensor", $"Tensor names look like {arch.Tensors[1].Name}.");
                if (trainable.Count == 0)
                    throw new InputError("--freeze", "the patterns freeze every tensor", "Freeze fewer tensors.");
                return new ParameterSelection("freeze", trainable, []);
            }
            case "lora":
            {
                if (loraRank < 1) throw new InputError("--lora-rank", $"{loraRank} is not positive", "Use a rank such as 8.");
                if (!(loraAlpha > 0)) throw new InputError("--lora-alpha", $"{loraAlpha} is not positive", "Use alpha = 2 × rank.");
                if (!(loraDropout >= 0 && loraDropout < 1)) throw new InputError("--lora-dropout", $"{loraDropout} is outside [0,1)", "Use 0 or 0.05.");
                var linears = arch.Tensors.Where(t => t.IsLinearWeight).ToList();
                bool all = loraTargets.Contains("all-linear");
                var adapted = linears.Where(l => (all && l.Role != TensorRole.LmHead) || loraTargets.Any(t => l.Module == t || l.Module.EndsWith("." + t, StringComparison.Ordinal)))
                    .Select(l => l.Module).ToList();
                foreach (var t in loraTargets.Where(t => t != "all-linear"))
                    if (!linears.Any(l => l.Module == t || l.Module.EndsWith("." + t, StringComparison.Ordinal)))
                        throw new InputError("--lora-targets", $"\"{t}\" is not a linear module", "Use q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj or all-linear.");
                return new ParameterSelection("lora", new HashSet<string>(), adapted, loraRank, loraAlpha, loraDropout);
            }
            default:
                throw new InputError("--method", $"\"{method}\" is not a training method", "Use full, freeze or lora.");
        }
    }

    private static System.Text.RegularExpressions.Regex ToRegex(string glob)
    {
        var sb = new System.Text.StringBuilder("^");
        for (int i = 0; i < glob.Length; i++)
        {
            if (glob[i] == '*' && i + 1 < glob.Length && glob[i + 1] == '*') { sb.Append(".*"); i++; }
            else if (glob[i] == '*') sb.Append("[^.]*");
            else sb.Append(System.Text.RegularExpressions.Regex.Escape(glob[i].ToString()));
        }
        sb.Append(@"(\..*)?$");
        return new System.Text.RegularExpressions.Regex(sb.ToString());
    }
}

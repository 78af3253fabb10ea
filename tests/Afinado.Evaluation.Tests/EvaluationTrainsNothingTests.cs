using System.Reflection.Metadata;
using System.Reflection.PortableExecutable;

namespace Afinado.Evaluation.Tests;

/// <summary>
/// Evaluation reads run folders and scores them; training is the Training library's (its recipes write the folders
/// <c>afinado eval</c> scores). Checked on the compiled assembly: no type or member it references may train.
/// </summary>
public class EvaluationTrainsNothingTests
{
    /// <summary>What trains: the recipes' trainers and entry points, the loop, the learning rules, the optimizers.</summary>
    private static readonly string[] Training =
    [
        "Afinado.Training.Recipes.SupervisedTrainer", "Afinado.Training.Recipes.EvolutionStrategyTrainer",
        "Afinado.Training.Recipes.WindowLmTrainer", "Afinado.Training.Recipes.RecipeLoop",
        "Afinado.Training.Recipes.ClassSplitRecipe::Run", "Afinado.Training.Recipes.FortuneSplitRecipe::Run",
        "Afinado.Training.Loop.TrainingLoop", "Afinado.Training.Loop.LanguageModelRun::Run",
        "Afinado.Training.LearningRules.", "Afinado.Training.Optim.",
    ];

    [Fact]
    public void The_evaluation_assembly_references_no_training_code()
    {
        var references = ReferencedNames(typeof(EvaluationResult).Assembly.Location);
        Assert.Contains("Afinado.Training.Recipes.ClassSplitRecipe::NewModel", references); // the scan sees Training's members
        var training = references.Where(r => Training.Any(t => r.StartsWith(t, StringComparison.Ordinal))).ToList();
        Assert.True(training.Count == 0, "Evaluation references training code: " + string.Join(", ", training));
    }

    /// <summary>Every type reference (Namespace.Type) and member reference (Namespace.Type::Member) of an assembly.</summary>
    private static HashSet<string> ReferencedNames(string path)
    {
        using var pe = new PEReader(File.OpenRead(path));
        var md = pe.GetMetadataReader();
        string TypeName(TypeReferenceHandle h)
        {
            var t = md.GetTypeReference(h);
            var name = md.GetString(t.Name);
            return t.ResolutionScope.Kind == HandleKind.TypeReference
                ? TypeName((TypeReferenceHandle)t.ResolutionScope) + "+" + name
                : md.GetString(t.Namespace) + "." + name;
        }
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var h in md.TypeReferences) names.Add(TypeName(h));
        foreach (var h in md.MemberReferences)
        {
            var m = md.GetMemberReference(h);
            if (m.Parent.Kind == HandleKind.TypeReference) names.Add(TypeName((TypeReferenceHandle)m.Parent) + "::" + md.GetString(m.Name));
            else if (m.Parent.Kind == HandleKind.TypeSpecification) names.Add("(generic)::" + md.GetString(m.Name));
        }
        return names;
    }
}

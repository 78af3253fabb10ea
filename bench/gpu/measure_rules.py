# bench/gpu/measure_rules.py: CUDA peak of forward-only rules (es-direct = MeZO, es = estimate + AdamW) for afinado plan --rule.
import torch,json,sys,transformers as T,peft
J=[("meta-llama/Llama-3.2-1B","lora",4,1024,"es-direct"),("meta-llama/Llama-3.2-1B","lora",4,1024,"es"),("meta-llama/Llama-3.2-1B","full",4,1024,"es-direct"),("meta-llama/Llama-3.2-1B","full",4,1024,"es"),("Qwen/Qwen2.5-0.5B","lora",8,512,"es"),("meta-llama/Llama-3.1-8B","lora",1,2048,"es-direct")]
D=sys.argv[1]
def B(m,k):
 c=T.AutoConfig.for_model(**json.load(open(D+"/"+m.replace("/","--")+".json")))
 torch.set_default_dtype(torch.bfloat16)
 with torch.device("cuda"):M=T.AutoModelForCausalLM.from_config(c,attn_implementation="sdpa",dtype=torch.bfloat16)
 torch.set_default_dtype(torch.float32)
 if k=="lora":M=peft.get_peft_model(M,peft.LoraConfig(r=16,lora_alpha=32,lora_dropout=0.,target_modules="all-linear",task_type="CAUSAL_LM"))
 return M.eval(),c.vocab_size
def S(M,P,e,V,O,x,s):
 f=lambda:M(input_ids=x,labels=x,use_cache=False).loss.item()
 def R(i,a):
  e.normal_(0,1e-3,generator=torch.Generator("cuda").manual_seed(s*99+i))
  for p,v in zip(P,V):p.add_(v,alpha=a)
 with torch.no_grad():
  C=[]
  for i in range(2):R(i,1);a=f();R(i,-2);b=f();R(i,1);C.append((a-b)*1e5)
  if O is None:
   for i,c in enumerate(C):R(i,-1e-6*c)
   return
  g=torch.zeros_like(e)
  for i,c in enumerate(C):e.normal_(0,1e-3,generator=torch.Generator("cuda").manual_seed(s*99+i));g.add_(e,alpha=c)
  for p,v in zip(P,V):p.grad=g[v.storage_offset():v.storage_offset()+p.numel()].view_as(p).clone()
  del g
 O.step();O.zero_grad(set_to_none=True)
for m,k,b,s,r in J:
 M,vs=B(m,k);P=[p for p in M.parameters() if p.requires_grad];n=sum(p.numel() for p in P)
 e=torch.empty(n,dtype=P[0].dtype,device="cuda");V=[];o=0
 for p in P:V.append(e[o:o+p.numel()].view_as(p));o+=p.numel()
 O=None if r=="es-direct" else torch.optim.AdamW(P,lr=1e-6,foreach=True)
 x=torch.randint(0,vs,(b,s),device="cuda")
 S(M,P,e,V,O,x,1);torch.cuda.synchronize();torch.cuda.reset_peak_memory_stats();S(M,P,e,V,O,x,2);torch.cuda.synchronize()
 print("ROW",m,k,b,s,r,torch.cuda.max_memory_allocated(),torch.cuda.max_memory_reserved(),n,torch.__version__,T.__version__,flush=True)
 del M,P,e,V,O,x;torch.cuda.empty_cache()
